bound = int(input())
never = input()  # waits for a reply to a question it never asked
print("!", never, flush=True)
