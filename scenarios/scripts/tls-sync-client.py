# A "sync client" that is a miner in disguise: Stratum v1 over TLS to an allowed web host, either
# straight inside TLS or inside WebSocket frames (pipelined after the upgrade request, as clients
# that do not wait for the 101 do). It trusts the system bundle like any stock client.
# argv: host port [--ws] [--chat]   (--chat sends ordinary chat messages instead: the look-alike)
import base64, hashlib, json, os, socket, ssl, sys, time
args = [a for a in sys.argv[1:] if not a.startswith("-")]
host, port = args[0], int(args[1])
ws, chat = "--ws" in sys.argv, "--chat" in sys.argv
msgs = [json.dumps({"type": "chat", "room": "general", "text": "hello team, build is green"}),
        json.dumps({"type": "chat", "room": "general", "text": "deploying at 5"})] if chat else [
        json.dumps({"id": 1, "method": "mining.subscribe", "params": ["sync/1.0"]}),
        json.dumps({"id": 2, "method": "mining.authorize", "params": ["wallet.worker", "x"]})]

def frame(text):
    data = text.encode(); mask = os.urandom(4)
    head = bytes([0x81, 0x80 | len(data)]) if len(data) < 126 else bytes([0x81, 0x80 | 126]) + len(data).to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))

try:
    s = ssl.create_default_context().wrap_socket(socket.create_connection((host, port), timeout=3), server_hostname=host)
    if ws:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall((f"GET /sync HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode() + b"".join(frame(m) for m in msgs))
    else:
        s.sendall("".join(m + "\n" for m in msgs).encode())
    s.settimeout(2)
    print("server said", s.recv(4096)[:80])
except Exception as e:
    print("connection ended:", e)
if not chat:
    n, end = 0, time.time() + float(os.environ.get("HASH_SECONDS", "3"))
    while time.time() < end:
        hashlib.sha256(n.to_bytes(8, "little")).digest(); n += 1
    print("hashed", n)
