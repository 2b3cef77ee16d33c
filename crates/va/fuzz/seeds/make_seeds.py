#!/usr/bin/env python3
"""Writes the seed scripts of the dns fuzz target (dns/).

A script is the sequence of answers the test name server gives, in the order
the validator asks: dns01("x.test") asks CNAME then TXT of
_acme-challenge.x.test., resolve_addresses("x.test") asks CNAME of x.test.
then AAAA and A (of the CNAME target when there is one). Each message is
prefixed by its length (2 bytes, big-endian); the harness fills in the id and
the question. Rerun after a change:
    python3 crates/va/fuzz/seeds/make_seeds.py
"""
import ipaddress
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent
A, NS, CNAME, SOA, TXT, AAAA = 1, 2, 5, 6, 16, 28
NOERROR, SERVFAIL, NXDOMAIN, REFUSED = 0, 2, 3, 5
CH = "_acme-challenge.x.test"


def name(n: str) -> bytes:
    out = b""
    for label in n.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def rr(owner: str, rtype: int, rdata: bytes, ttl: int = 60) -> bytes:
    return name(owner) + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


def txt(owner, *strings):
    data = b"".join(bytes([len(s)]) + s for s in strings)
    return rr(owner, TXT, data)


def addr(owner, ip):
    ip = ipaddress.ip_address(ip)
    return rr(owner, AAAA if ip.version == 6 else A, ip.packed)


def cname(owner, target):
    return rr(owner, CNAME, name(target))


def soa(owner):
    rdata = name("ns." + owner) + name("admin." + owner) + struct.pack(">IIIII", 1, 3600, 600, 86400, 60)
    return rr(owner, SOA, rdata)


def msg(answers=(), authorities=(), rcode=NOERROR, tc=False, aa=True) -> bytes:
    flags = 0x8000 | (0x0400 if aa else 0) | (0x0200 if tc else 0) | 0x0100 | 0x0080 | rcode
    header = struct.pack(">HHHHHH", 0, flags, 0, len(answers), len(authorities), 0)
    return header + b"".join(answers) + b"".join(authorities)


def script(*messages) -> bytes:
    return b"".join(struct.pack(">H", len(m)) + m for m in messages)


NODATA = msg(authorities=[soa("test")])

SEEDS = {
    "plain": script(
        NODATA,
        msg([txt(CH, b"expected-", b"digest"), txt(CH, b"other")]),
        NODATA,
        msg([addr("x.test", "2001:db8::1"), addr("x.test", "2001:db8::1")]),
        msg([addr("x.test", "192.0.2.1"), addr("x.test", "10.0.0.1")]),
    ),
    "cname-chain": script(
        msg([cname(CH, "_acme.y.example")]),
        msg([cname("_acme.y.example", "_acme.z.test")]),
        NODATA,
        msg([cname("_acme.z.test", "_acme.y.example"), txt("_acme.z.test", b"expected-digest")]),
        msg([cname("x.test", "y.test")]),
        NODATA,
        msg([cname("y.test", "z.test"), addr("z.test", "2001:db8::2")]),
        msg([addr("y.test", "192.0.2.2")]),
    ),
    "cname-loop": script(
        msg([cname(CH, "_acme.y.test")]),
        msg([cname("_acme.y.test", CH)]),
        msg([cname("x.test", "y.test")]),
        msg([cname("y.test", "x.test")]),
    ),
    "cname-leaves-profile": script(
        msg([cname(CH, "_acme.elsewhere.org")]),
        msg([cname("x.test", "x.elsewhere.org")]),
    ),
    "nxdomain": script(
        msg(authorities=[soa("test")], rcode=NXDOMAIN),
        msg(authorities=[soa("test")], rcode=NXDOMAIN),
        NODATA,
        msg(authorities=[soa("test")], rcode=NXDOMAIN),
        msg(authorities=[soa("test")], rcode=NXDOMAIN),
    ),
    "errors": script(msg(rcode=SERVFAIL), NODATA, msg(rcode=REFUSED), NODATA, msg(rcode=SERVFAIL)),
    "truncated": script(msg(tc=True), msg([txt(CH, b"x" * 255, b"\xff\xfe")], tc=True)),
    "wrong-names-and-types": script(
        msg([addr(CH, "192.0.2.9"), txt("other.test", b"expected-digest")]),
        msg([txt(CH.upper(), b"expected-digest"), rr(CH, NS, name("ns.test"))]),
        msg([txt("x.test", b"t")]),
        msg([addr("X.TEST", "::ffff:10.1.2.3"), addr("x.test", "::ffff:192.0.2.3")]),
        msg([addr("x.test", "2001:db8::3")]),
    ),
    "empty-txt": script(NODATA, msg([rr(CH, TXT, b""), txt(CH)]), NODATA, NODATA, NODATA),
}


def main():
    d = HERE / "dns"
    d.mkdir(exist_ok=True)
    for n, data in SEEDS.items():
        (d / n).write_bytes(data)


if __name__ == "__main__":
    main()
