# A miner that no name gives away: the stock interpreter hashing at full CPU, beside a
# long-lived, low-volume, periodic connection (an HTTP keep-alive ping every 2 s).
import hashlib, socket, sys, threading, time
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=5)
def keepalive():
    while True:
        s.sendall(f"GET /?job HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        s.recv(65536)
        time.sleep(2)
threading.Thread(target=keepalive, daemon=True).start()
n, end = 0, time.time() + 45
while time.time() < end:
    hashlib.sha256(n.to_bytes(8, "little")).digest()
    n += 1
print("hashed", n)
