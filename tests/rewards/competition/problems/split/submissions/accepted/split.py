n = int(input())
print(2 if n > 3 else 1, n - 2 if n > 3 else 2)
