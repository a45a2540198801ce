"""Print every result a running pipeline publishes (see docs/results.md)."""
import sys

import zmq

sock = zmq.Context().socket(zmq.SUB)
sock.connect(sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555")
sock.setsockopt_string(zmq.SUBSCRIBE, sys.argv[2] if len(sys.argv) > 2 else "")  # a stream id, or all
while True:
    stream, result = sock.recv_multipart()
    print(stream.decode(), result.decode())
