bound = int(input())
blocks = [bytearray(64 << 20) for _ in range(64)]  # 4 GiB against a 256 MiB limit
print("!", len(blocks), flush=True)
