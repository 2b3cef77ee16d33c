#!/usr/bin/env python3
"""Writes the seed inputs of the jws and jwk fuzz targets (jws/, jwk/).

Valid structures the fuzzer would take long to find on its own: JWKs of every
supported kind (the curves' base points are valid public keys; the RSA key is
the crate's test key), flattened JWS bodies with a `jwk` and a `kid`, and an
external account binding. Signatures are not valid. Rerun after a change:
    python3 crates/acme-wire/fuzz/seeds/make_seeds.py
"""
import base64
import json
import os
import pathlib

HERE = pathlib.Path(__file__).resolve().parent


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_items(data: bytes):
    """Top-level (tag, content) pairs of a DER string."""
    i = 0
    while i < len(data):
        tag = data[i]
        length = data[i + 1]
        i += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(data[i : i + n], "big")
            i += n
        yield tag, data[i : i + length]
        i += length


def rsa_test_key():
    spki = (HERE.parent.parent / "src/testdata/rsa2048.spki.der").read_bytes()
    (_, seq), = der_items(spki)
    _alg, (_, bits) = der_items(seq)
    (_, rsa), = der_items(bits[1:])
    (_, n), (_, e) = der_items(rsa)
    return spki, n.lstrip(b"\0"), e


CURVES = {
    "P-256": (
        "6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296",
        "4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5",
    ),
    "P-384": (
        "AA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A38"
        "5502F25DBF55296C3A545E3872760AB7",
        "3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C0"
        "0A60B1CE1D7E819D7A431D7C90EA0E5F",
    ),
    "P-521": (
        "00C6858E06B70404E9CD9E3ECB662395B4429C648139053FB521F828AF606B4D"
        "3DBAA14B5E77EFE75928FE1DC127A2FFA8DE3348B3C1856A429BF97E7E31C2E5BD66",
        "011839296A789A3BC0045C8A5FB42C7D1BD998F54449579B446817AFBD17273E"
        "662C97EE72995EF42640C550B9013FAD0761353C7086A272C24088BE94769FD16650",
    ),
}
ALG = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
SIG_LEN = {"ES256": 64, "ES384": 96, "ES512": 132, "RS256": 256, "EdDSA": 64}


def jwks():
    spki, n, e = rsa_test_key()
    keys = {"rsa": ({"kty": "RSA", "n": b64u(n), "e": b64u(e)}, "RS256")}
    for crv, (x, y) in CURVES.items():
        jwk = {"kty": "EC", "crv": crv, "x": b64u(bytes.fromhex(x)), "y": b64u(bytes.fromhex(y))}
        keys[crv.lower()] = (jwk, ALG[crv])
    keys["ed25519"] = ({"kty": "OKP", "crv": "Ed25519", "x": b64u(bytes(range(32)))}, "EdDSA")
    return spki, keys


def jws(header: dict, payload: bytes, sig_len: int) -> bytes:
    return json.dumps(
        {
            "protected": b64u(json.dumps(header).encode()),
            "payload": b64u(payload),
            "signature": b64u(bytes([0x5A]) * sig_len),
        }
    ).encode()


def write(directory: str, name: str, data: bytes):
    d = HERE / directory
    d.mkdir(exist_ok=True)
    (d / name).write_bytes(data)


def main():
    spki, keys = jwks()
    url = "https://acme.example/acme/new-account"
    write("jwk", "rsa.spki.der", spki)
    for name, (jwk, alg) in keys.items():
        write("jwk", f"{name}.json", json.dumps(jwk).encode())
        header = {"alg": alg, "nonce": "bm9uY2U", "url": url, "jwk": jwk}
        payload = json.dumps({"termsOfServiceAgreed": True, "contact": ["mailto:a@example.com"]})
        write("jws", f"new-account-{name}.json", jws(header, payload.encode(), SIG_LEN[alg]))
    write(
        "jws",
        "post-as-get-kid.json",
        jws({"alg": "ES256", "nonce": "bm9uY2U", "url": url, "kid": url.replace("new-account", "acct/1")}, b"", 64),
    )
    rsa_jwk = keys["rsa"][0]
    eab = json.loads(jws({"alg": "HS256", "kid": "kid-1", "url": url}, json.dumps(rsa_jwk).encode(), 32))
    write("jws", "eab.json", json.dumps(eab).encode())
    inner = json.loads(jws({"alg": "ES256", "url": url, "jwk": keys["p-256"][0]},
                           json.dumps({"account": url, "oldKey": rsa_jwk}).encode(), 64))
    write("jws", "key-change.json", jws({"alg": "RS256", "nonce": "bm9uY2U", "url": url, "kid": url},
                                         json.dumps(inner).encode(), 256))


if __name__ == "__main__":
    main()
