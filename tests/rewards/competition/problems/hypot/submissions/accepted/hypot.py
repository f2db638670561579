import math

x, y = map(float, input().split())
print(f"{math.hypot(x, y):.10f}")
