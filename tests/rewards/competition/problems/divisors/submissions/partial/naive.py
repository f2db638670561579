n = int(input())
print(sum(1 for i in range(1, n + 1) if n % i == 0))  # O(n): only the small subtask fits
