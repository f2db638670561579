a, b = map(int, input().split())
blocks = [bytearray(64 << 20) for _ in range(64)]  # 4 GiB, far above the 256 MiB limit
print(a + b + len(blocks) - 64)
