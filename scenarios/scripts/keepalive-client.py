# A websocket-style client: one long-lived connection, a small message every 2 s, no CPU.
import socket, sys, time
host, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.create_connection((host, port), timeout=5)
n, end = 0, time.time() + secs
while time.time() < end:
    s.sendall(f"GET /?ping={n} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    s.recv(65536)
    n += 1
    time.sleep(2)
print("pings", n)
