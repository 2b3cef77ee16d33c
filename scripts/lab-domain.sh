#!/usr/bin/env bash
# A throwaway Active Directory domain for the tests: a Samba AD DC (a real
# KDC and the real AD schema) bound only to 127.0.0.2.
#
#   scripts/lab-domain.sh start DIR    provision (first time) and start it
#   scripts/lab-domain.sh stop DIR     stop it (by the PID in DIR/run)
#   scripts/lab-domain.sh env DIR      print the shell variables below
#
# The domain: realm CORP.TEST, NetBIOS CORP, DC dc1.corp.test (127.0.0.2).
# Accounts:
#   alice / Passw0rd!   the enrolment user of examples/lab-adcs.yml
#   lab-ca              service account of the lab CA (lab-adcs) with the SPNs
#                       HOST/ca.corp.test and RPCSS/ca.corp.test, AES only
#   DC1$                the DC, with the SPN ldap/dc1.corp.test (as on Windows)
#   Administrator / Admin-Passw0rd!  domain admin (lab only)
# Files (everything under DIR; nothing is written outside it):
#   DIR/krb5.conf       realm CORP.TEST with its KDC at 127.0.0.2
#   DIR/ca.keytab       keys of HOST/ca.corp.test and RPCSS/ca.corp.test
#   DIR/alice.keytab    keys of alice@CORP.TEST
#   DIR/ldap-ca.pem     CA of the DC's LDAPS certificate (dc1.corp.test, 127.0.0.2)
#   DIR/samba/          the DC's configuration, databases, logs and PID file
# The directory holds the certificate templates of examples/lab-adcs.yml as
# pKICertificateTemplate objects (plus the deliberately weak ones that
# `adcs check` must flag) and a pKIEnrollmentService LAB-CA publishing them;
# ca.corp.test resolves to 127.0.0.1 in the domain's DNS.
#
# Idempotent: start on a running domain does nothing; start on a stopped one
# starts it without provisioning again. The Debian packages are installed on
# first use with package scripts kept from starting services (policy-rc.d).
# No system service is started; samba runs as a plain daemon of this script.
set -euo pipefail

cmd="${1:-}"
DIR="${2:-}"
[[ -n "$cmd" && -n "$DIR" ]] || { echo "usage: $0 start|stop|env DIR" >&2; exit 2; }
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"

IP=127.0.0.2
REALM=CORP.TEST
DOMAIN=CORP
DNSDOMAIN=corp.test
BASE="DC=corp,DC=test"
ADMINPASS='Admin-Passw0rd!'
ALICEPASS='Passw0rd!'
S="$DIR/samba"
CONF="$S/etc/smb.conf"
PIDFILE="$S/run/samba.pid"

say() { printf '[lab-domain] %s\n' "$*" >&2; }

running() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(tr -dc 0-9 < "$PIDFILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == samba* ]]
}

port_open() { (exec 3<>"/dev/tcp/$IP/$1") 2>/dev/null; }

install_packages() {
  local need=() pkg
  for pkg in samba samba-ad-dc samba-ad-provision krb5-user ldb-tools winbind; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
  done
  [[ "${#need[@]}" -eq 0 ]] && return 0
  say "apt-get install ${need[*]}"
  local SUDO=() policy_rc=/usr/sbin/policy-rc.d own=
  [[ "$(id -u)" -eq 0 ]] || SUDO=(sudo -n)
  if [[ ! -e "$policy_rc" ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy_rc" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy_rc"
    own=1
  fi
  local rc=0
  { "${SUDO[@]}" apt-get update -q >/dev/null &&
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null; } || rc=$?
  [[ -z "$own" ]] || "${SUDO[@]}" rm -f "$policy_rc"
  [[ "$rc" -eq 0 ]] || { echo "apt-get install ${need[*]} failed (exit $rc)" >&2; exit "$rc"; }
}

# samba-tool on the local database (no network, no credentials needed).
st() { samba-tool "$@" -s "$CONF" >/dev/null; }
ldb() { local tool="$1"; shift; SMB_CONF_PATH="$CONF" "$tool" -H "$S/private/sam.ldb" "$@"; }

# LDAPS certificate of the DC, from a lab CA of its own: DNS dc1.corp.test
# and IP 127.0.0.2 (Samba's self-made one has neither), so TLS clients can
# verify it against DIR/ldap-ca.pem.
tls_certs() {
  local t="$S/tls"
  mkdir -p "$t"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=CORP.TEST lab LDAPS CA" \
    -keyout "$t/ca-key.pem" -out "$t/ca.pem" 2>/dev/null
  openssl req -new -newkey rsa:2048 -nodes -subj "/CN=dc1.corp.test" \
    -keyout "$t/key.pem" -out "$t/dc1.csr" 2>/dev/null
  printf 'subjectAltName=DNS:dc1.corp.test,IP:%s\nextendedKeyUsage=serverAuth\n' "$IP" > "$t/ext.cnf"
  openssl x509 -req -in "$t/dc1.csr" -CA "$t/ca.pem" -CAkey "$t/ca-key.pem" -CAcreateserial \
    -days 3650 -extfile "$t/ext.cnf" -out "$t/cert.pem" 2>/dev/null
  chmod 600 "$t/key.pem" "$t/ca-key.pem"
}

provision() {
  say "provisioning $REALM in $S"
  rm -rf "$S"
  mkdir -p "$S/run" "$S/log"
  tls_certs
  samba-tool domain provision \
    --targetdir="$S" --realm="$REALM" --domain="$DOMAIN" --server-role=dc \
    --dns-backend=SAMBA_INTERNAL --adminpass="$ADMINPASS" --host-name=dc1 --host-ip="$IP" \
    --option="interfaces = $IP/8" --option="bind interfaces only = yes" \
    --option="pid directory = $S/run" --option="log file = $S/log/%m.log" \
    --option="ncalrpc dir = $S/run/ncalrpc" --option="winbindd socket directory = $S/run/winbindd" \
    --option="nmbd bind explicit broadcast = no" \
    --option="dns forwarder = $IP" --option="kerberos encryption types = strong" \
    --option="ntlm auth = mschapv2-and-ntlmv2-only" \
    --option="server services = -s3fs -winbindd -ntp_signd -drepl -kcc -dnsupdate" \
    --option="dsdb:schema update allowed = yes" \
    --option="tls enabled = yes" --option="tls keyfile = $S/tls/key.pem" \
    --option="tls certfile = $S/tls/cert.pem" --option="tls cafile = $S/tls/ca.pem" \
    >"$S/log/provision.log" 2>&1 || { tail -20 "$S/log/provision.log" >&2; exit 1; }
  # Accounts. AES only (msDS-SupportedEncryptionTypes 24): what hardened
  # domains configure and what the Rust Kerberos client speaks.
  st user create alice "$ALICEPASS"
  st user setexpiry alice --noexpiry
  st user create lab-ca --random-password --description="lab-adcs service account"
  st user setexpiry lab-ca --noexpiry
  st spn add HOST/ca.corp.test lab-ca
  st spn add RPCSS/ca.corp.test lab-ca
  local acct
  for acct in alice lab-ca; do
    ldb ldbmodify >/dev/null <<EOF
dn: CN=$acct,CN=Users,$BASE
changetype: modify
replace: msDS-SupportedEncryptionTypes
msDS-SupportedEncryptionTypes: 24
EOF
  done
  pki_objects
  touch "$S/.provisioned"
}

# The SID of an account, for the templates' security descriptors.
sid_of() { ldb ldbsearch "(sAMAccountName=$1)" objectSid | sed -n 's/^objectSid: //p'; }

# Certificate templates (pKICertificateTemplate) and the enrollment service
# (pKIEnrollmentService) LAB-CA, under CN=Public Key Services in the
# configuration partition, as a Windows CA installation creates them.
pki_objects() {
  local pks="CN=Public Key Services,CN=Services,CN=Configuration,$BASE"
  local alice_sid du_sid
  alice_sid="$(sid_of alice)"
  du_sid="$(ldb ldbsearch -b "CN=Users,$BASE" "(cn=Domain Users)" objectSid | sed -n 's/^objectSid: //p')"
  # Enroll extended right 0e10c968-78fb-11d2-90d4-00c04f79dc55; read for
  # Authenticated Users; full control for Domain Admins.
  local enroll="0e10c968-78fb-11d2-90d4-00c04f79dc55"
  local sd_alice="O:DAG:DAD:(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)(A;;RPLCLORC;;;AU)(OA;;CR;$enroll;;$alice_sid)"
  local sd_nobody="O:DAG:DAD:(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)(A;;RPLCLORC;;;AU)"
  : "$du_sid"
  {
    for c in "CN=Public Key Services,CN=Services,CN=Configuration,$BASE" \
             "CN=Certificate Templates,$pks" "CN=Enrollment Services,$pks"; do
      if ! ldb ldbsearch -b "$c" -s base "(objectClass=*)" dn 2>/dev/null | grep -q '^dn:'; then
        printf 'dn: %s\nobjectClass: container\n\n' "$c"
      fi
    done
  } > "$S/pki-containers.ldif"
  [[ -s "$S/pki-containers.ldif" ]] && ldb ldbadd "$S/pki-containers.ldif" >/dev/null
  # template NAME OID-SUFFIX NAME-FLAG ENROLL-FLAG RA-SIGS EKUS MIN-KEY SD
  #   NAME-FLAG 1 = CT_FLAG_ENROLLEE_SUPPLIES_SUBJECT; ENROLL-FLAG 2 =
  #   CT_FLAG_PEND_ALL_REQUESTS (manager approval); EKUS space separated.
  template() {
    local name="$1" oid="$2" nflag="$3" eflag="$4" ekus="$5" bits="$6" sd="$7" e
    printf 'dn: CN=%s,CN=Certificate Templates,%s\n' "$name" "$pks"
    printf 'objectClass: pKICertificateTemplate\ncn: %s\ndisplayName: %s\n' "$name" "$name"
    printf 'flags: 131680\nrevision: 100\npKIDefaultKeySpec: 1\npKIMaxIssuingDepth: 0\n'
    printf 'pKIKeyUsage:: oAA=\npKIExpirationPeriod:: AEA5hy7h/v8=\npKIOverlapPeriod:: AICmCv/e//8=\n'
    printf 'pKICriticalExtensions: 2.5.29.15\n'
    printf 'msPKI-Template-Schema-Version: 2\nmsPKI-Template-Minor-Revision: 1\n'
    printf 'msPKI-RA-Signature: 0\nmsPKI-Minimal-Key-Size: %s\n' "$bits"
    printf 'msPKI-Certificate-Name-Flag: %s\nmsPKI-Enrollment-Flag: %s\nmsPKI-Private-Key-Flag: 16842752\n' "$nflag" "$eflag"
    printf 'msPKI-Cert-Template-OID: 1.3.6.1.4.1.311.21.8.1000.%s\n' "$oid"
    for e in $ekus; do
      printf 'pKIExtendedKeyUsage: %s\nmsPKI-Certificate-Application-Policy: %s\n' "$e" "$e"
    done
    printf 'nTSecurityDescriptor: %s\n\n' "$sd"
  }
  local server_auth=1.3.6.1.5.5.7.3.1 client_auth=1.3.6.1.5.5.7.3.2 any=2.5.29.37.0
  # Name flag 1 = CT_FLAG_ENROLLEE_SUPPLIES_SUBJECT ("Supply in the request",
  # what an ACME bridge needs); 0x08000000 = SUBJECT_ALT_REQUIRE_DNS (subject
  # built from AD). The good templates are the ones of examples/lab-adcs.yml;
  # the others are each wrong in one way that `adcs check` must report.
  {
    template WebServer 1 1 0 "$server_auth" 2048 "$sd_alice"
    template PendingWebServer 2 1 2 "$server_auth" 2048 "$sd_alice"
    template DeniedTemplate 3 1 0 "$server_auth" 2048 "$sd_alice"
    template SubjectFromAD 4 134217728 0 "$server_auth" 2048 "$sd_alice"
    template ClientAuthToo 5 1 0 "$server_auth $client_auth" 2048 "$sd_alice"
    template AnyPurpose 6 1 0 "$any" 2048 "$sd_alice"
    template NotPublished 7 1 0 "$server_auth" 2048 "$sd_alice"
    template NoEnroll 8 1 0 "$server_auth" 2048 "$sd_nobody"
  } > "$S/pki-templates.ldif"
  ldb ldbadd "$S/pki-templates.ldif" >/dev/null
  {
    printf 'dn: CN=LAB-CA,CN=Enrollment Services,%s\n' "$pks"
    printf 'objectClass: pKIEnrollmentService\ncn: LAB-CA\ndisplayName: LAB-CA\n'
    printf 'dNSHostName: ca.corp.test\nflags: 10\n'
    for t in WebServer PendingWebServer DeniedTemplate SubjectFromAD ClientAuthToo AnyPurpose NoEnroll; do
      printf 'certificateTemplates: %s\n' "$t"
    done
    # Request Certificates (the Enroll right) for Authenticated Users, as a
    # CA installation grants it
    printf 'nTSecurityDescriptor: O:DAG:DAD:(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)(A;;RPLCLORC;;;AU)(OA;;CR;%s;;AU)\n' "$enroll"
    printf '\n'
  } > "$S/pki-enrollment.ldif"
  ldb ldbadd "$S/pki-enrollment.ldif" >/dev/null
}

write_krb5_conf() {
  cat > "$DIR/krb5.conf" <<EOF
[libdefaults]
	default_realm = $REALM
	dns_lookup_realm = false
	dns_lookup_kdc = false
	rdns = false
	default_ccache_name = FILE:$DIR/ccache
	default_tkt_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
	default_tgs_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
	permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96

[realms]
	$REALM = {
		kdc = $IP
		admin_server = $IP
	}

[domain_realm]
	.$DNSDOMAIN = $REALM
	$DNSDOMAIN = $REALM
EOF
}

start() {
  install_packages
  if running; then say "already running (pid $(cat "$PIDFILE"))"; return 0; fi
  [[ -f "$S/.provisioned" && -f "$S/tls/cert.pem" ]] || provision
  write_krb5_conf
  say "starting samba on $IP"
  samba -s "$CONF" -D
  local i
  for i in $(seq 1 300); do
    if running && port_open 88 && port_open 389 && port_open 135 && port_open 53; then break; fi
    (( i == 300 )) && { say "samba did not come up; see $S/log"; exit 1; }
    sleep 0.2
  done
  # The DC's LDAP SPN as a Windows DC registers it (Samba's provisioning
  # leaves it out and its KDC does not map ldap/ to HOST/): the Kerberos
  # bind of `adcs check` asks for a ticket for ldap/dc1.corp.test.
  samba-tool spn list 'DC1$' -s "$CONF" 2>/dev/null | grep -qi "ldap/dc1.corp.test" ||
    st spn add ldap/dc1.corp.test 'DC1$'
  # DNS record and keytabs: idempotent, done on every start (cheap).
  samba-tool dns query "$IP" "$DNSDOMAIN" ca A -U "Administrator%$ADMINPASS" -s "$CONF" >/dev/null 2>&1 ||
    samba-tool dns add "$IP" "$DNSDOMAIN" ca A 127.0.0.1 -U "Administrator%$ADMINPASS" -s "$CONF" >/dev/null
  rm -f "$DIR/ca.keytab" "$DIR/alice.keytab"
  st domain exportkeytab "$DIR/ca.keytab" --principal=HOST/ca.corp.test
  st domain exportkeytab "$DIR/ca.keytab" --principal=RPCSS/ca.corp.test
  st domain exportkeytab "$DIR/alice.keytab" --principal=alice
  chmod 600 "$DIR/ca.keytab" "$DIR/alice.keytab"
  cp "$S/tls/ca.pem" "$DIR/ldap-ca.pem"
  say "up: realm $REALM, KDC $IP:88, LDAP $IP:389; krb5.conf, ca.keytab, alice.keytab in $DIR"
}

stop() {
  if ! running; then say "not running"; return 0; fi
  local pid
  pid="$(tr -dc 0-9 < "$PIDFILE")"
  kill "$pid"
  local i
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  say "stopped (pid $pid)"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  env)
    printf 'export KRB5_CONFIG=%q\nexport LAB_DOMAIN_DIR=%q\nexport LAB_KDC=%q\n' \
      "$DIR/krb5.conf" "$DIR" "tcp://$IP:88"
    ;;
  *) echo "usage: $0 start|stop|env DIR" >&2; exit 2 ;;
esac
