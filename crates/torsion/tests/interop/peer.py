"""A Twisted peer for torsion's framing interop tests.

    python3 peer.py server PROTO MAX          listen on 127.0.0.1 (port 0), print "PORT n",
                                             echo every message, exit 0 after the first
                                             connection closes
    python3 peer.py client PROTO MAX PORT    connect to 127.0.0.1:PORT, send the test
                                             messages and one over-long message, check the
                                             echoes byte for byte, exit 0 if all came back
                                             and the server then closed

PROTO is one of: line, netstring, int32. MAX is the maximum message length both
sides use. Every run stops by itself after TIMEOUT seconds (exit 2).
"""

import random
import sys

from twisted.internet import protocol, reactor
from twisted.protocols import basic

TIMEOUT = 30


def messages(proto, max_length):
    """The messages a client sends: edge cases first, all valid."""
    rng = random.Random(20240)
    if proto == "line":
        alphabet = bytes(range(0x20, 0x7F))
        pick = lambda n: bytes(rng.choice(alphabet) for _ in range(n))
    else:
        pick = lambda n: bytes(rng.getrandbits(8) for _ in range(n))
    out = [b"", b"hello", pick(1), pick(max_length), pick(max_length - 1)]
    if proto != "line" and max_length >= 600:
        out.append(bytes(range(256)) * 2 + b"\r\n,:\x00")
    out += [pick(rng.randrange(0, max_length + 1)) for _ in range(20)]
    out.append(pick(max_length))
    return out


class Echo:
    def received(self, data):
        self.send(data)


class Checker:
    """Sends the messages and one over-long one; checks the echoes."""

    def connectionMade(self):
        self.expected = messages(PROTO, MAX)
        self.got = []
        for m in self.expected:
            self.send(m)

    def send_over_long(self):
        # Only once every echo is in: a server that closes with input
        # unread may reset the connection, destroying echoes in flight.
        over = b"x" * (MAX + 1)
        if PROTO == "int32":
            self.transport.write(len(over).to_bytes(4, "big") + over)
        elif PROTO == "netstring":
            self.transport.write(b"%d:%s," % (len(over), over))
        else:
            self.transport.write(over + b"\r\n")

    def received(self, data):
        self.got.append(data)
        if len(self.got) == len(self.expected):
            self.send_over_long()

    def connectionLost(self, reason):
        ok = self.got == self.expected
        if not ok:
            for i, (a, b) in enumerate(zip(self.got, self.expected)):
                if a != b:
                    print("MISMATCH at message %d: %r != %r" % (i, a[:40], b[:40]))
                    break
            print("GOT %d messages, EXPECTED %d" % (len(self.got), len(self.expected)))
        else:
            print("OK %d messages" % len(self.got))
        sys.stdout.flush()
        finish(0 if ok else 1)


def make_protocol(proto, behaviour):
    if proto == "line":

        class P(behaviour, basic.LineReceiver):
            MAX_LENGTH = MAX

            def lineReceived(self, line):
                self.received(line)

            def send(self, data):
                self.sendLine(data)

    elif proto == "netstring":

        class P(behaviour, basic.NetstringReceiver):
            MAX_LENGTH = MAX

            def stringReceived(self, s):
                self.received(s)

            def send(self, data):
                self.sendString(data)

    elif proto == "int32":

        class P(behaviour, basic.Int32StringReceiver):
            MAX_LENGTH = MAX

            def stringReceived(self, s):
                self.received(s)

            def send(self, data):
                self.sendString(data)

    else:
        raise SystemExit("unknown protocol %r" % proto)
    return P


EXIT = [2]


def finish(code):
    EXIT[0] = code
    if reactor.running:
        reactor.stop()


def timed_out():
    print("TIMEOUT")
    sys.stdout.flush()
    finish(2)


class ServerProto:
    def connectionLost(self, reason):
        finish(0)


if __name__ == "__main__":
    MODE, PROTO, MAX = sys.argv[1], sys.argv[2], int(sys.argv[3])
    reactor.callLater(TIMEOUT, timed_out)
    if MODE == "server":
        Base = make_protocol(PROTO, Echo)

        class Server(ServerProto, Base):
            pass

        factory = protocol.Factory.forProtocol(Server)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        print("PORT %d" % port.getHost().port)
        sys.stdout.flush()
    elif MODE == "client":
        PORT = int(sys.argv[4])
        factory = protocol.ClientFactory.forProtocol(make_protocol(PROTO, Checker))
        factory.clientConnectionFailed = lambda c, r: (print("CONNECT FAILED", r), finish(1))
        reactor.connectTCP("127.0.0.1", PORT, factory, timeout=TIMEOUT)
    else:
        raise SystemExit("usage: peer.py server|client PROTO MAX [PORT]")
    reactor.run()
    sys.exit(EXIT[0])
