# A port sweep slowed to one port every 3 s, below any seconds-long window.
import socket, sys, time
host, delay = sys.argv[1], float(sys.argv[2])
for port in range(1, 41):
    s = socket.socket(); s.settimeout(0.3)
    try:
        s.connect((host, port))
    except Exception:
        pass
    finally:
        s.close()
    time.sleep(delay)
print("swept")
