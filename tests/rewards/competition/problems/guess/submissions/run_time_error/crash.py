bound = int(input())
print("?", bound // 2, flush=True)
reply = input()
raise SystemExit(3)
