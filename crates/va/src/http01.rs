//! http-01 (RFC 8555 §8.3).
//!
//! The validator fetches a URL the client chose, from inside the network,
//! and follows redirects the client's server chose: without care that is a
//! server-side request forgery whose result is read back through the
//! failure detail. So each hop is checked before it is contacted, and a
//! failure describes only what the client already knows.
//!
//! - The first request is `GET http://{domain}:{http01_port}/.well-known/
//!   acme-challenge/{token}` with `Host: {domain}`.
//! - Addresses are tried IPv6 first, then IPv4 (like Boulder), falling over
//!   to the next address only when the TCP connection fails; an HTTP answer
//!   of any kind is final. Each attempt gets a fair share of the remaining
//!   time budget.
//! - At most [`MAX_REDIRECTS`] redirects (301, 302, 303, 307, 308), only to
//!   `http` / `https`, only to port 80 or 443, and only to DNS names: a
//!   redirect to an IP literal is refused (as Let's Encrypt does). The
//!   profile's `http01_port` and `tls_alpn01_port` are the test-time
//!   stand-ins for 80 and 443: a URL without an explicit port (or with the
//!   scheme's default port) is dialled on `http01_port` for `http` and
//!   `tls_alpn01_port` for `https`, and an explicit port must be one of 80,
//!   443, `http01_port`, `tls_alpn01_port`.
//! - Every hop is re-resolved through the profile (its name must be inside a
//!   zone) and every address passes the IP policy before it is contacted.
//! - **Nothing read from the network is echoed but the original URL's
//!   status.** A failure at the challenge URL names the URL, the address
//!   used and the HTTP status, and the body's length, never its bytes; a
//!   refused redirect out of it names the `Location` it gave. Once a
//!   redirect has been followed, every failure — DNS, policy, connection,
//!   TLS, status, body, a further redirect refused or one too many — is
//!   reported as [`REDIRECT_TARGET_FAILED`] and nothing else; the precise
//!   reason is logged at debug level. A redirect target may be an internal
//!   server the client cannot reach; the failure detail must not become a
//!   way to read it.
//! - HTTPS targets: TLS without certificate verification (as Let's Encrypt
//!   does for redirects), SNI = the target host. Since nothing of a redirect
//!   target is echoed, an unverified HTTPS target reads nothing back to the
//!   client either.
//! - The body is read up to [`MAX_BODY`] bytes (more is a failure), trailing
//!   whitespace is trimmed, and the rest must equal the key authorization.
//! - The [`ValidationRecord`] describes the hop that served the key
//!   authorization; the redirect chain is logged at debug level.

use std::net::IpAddr;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;
use url::{Host, Url};

use crate::error::{excerpt, FailureKind, ValidationFailure};
use crate::net::{dial_first, Deadline};
use crate::profile::normalise;
use crate::record::ValidationRecord;
use crate::validator::Validator;

/// Most redirects followed.
pub const MAX_REDIRECTS: usize = 10;
/// Largest accepted response body.
pub const MAX_BODY: usize = 8 * 1024;

/// The whole failure detail for anything that goes wrong after a redirect.
pub const REDIRECT_TARGET_FAILED: &str =
    "the redirect target did not answer with the key authorization";

const USER_AGENT: &str = "certeasy-va (ACME validation)";

impl Validator {
    /// Validates an http-01 challenge (RFC 8555 §8.3): GET
    /// `http://{domain}/.well-known/acme-challenge/{token}` (on the profile's
    /// http-01 port), following at most 10 redirects (to DNS names only),
    /// each hop re-resolved and checked against the IP policy. A failure
    /// after a redirect says only that the redirect target did not answer
    /// with the key authorization. See the `http01` module notes.
    pub async fn http01(
        &self,
        domain: &str,
        token: &str,
        key_authorization: &str,
    ) -> Result<ValidationRecord, ValidationFailure> {
        validate(self, domain, token, key_authorization).await
    }
}

pub(crate) async fn validate(
    va: &Validator,
    domain: &str,
    token: &str,
    key_authorization: &str,
) -> Result<ValidationRecord, ValidationFailure> {
    let domain = normalise(domain);
    if token.is_empty()
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ValidationFailure::internal(format!(
            "invalid http-01 token {:?}",
            excerpt(token, 64)
        )));
    }
    va.resolvers.check_in_profile(&domain)?;
    let profile = va.profile();
    let port = if profile.http01_port == 80 {
        String::new()
    } else {
        format!(":{}", profile.http01_port)
    };
    let first = format!("http://{domain}{port}/.well-known/acme-challenge/{token}");
    let mut url = Url::parse(&first)
        .map_err(|e| ValidationFailure::internal(format!("cannot build the URL {first}: {e}")))?;
    if !matches!(url.host(), Some(Host::Domain(_))) {
        return Err(ValidationFailure::new(
            FailureKind::RejectedIdentifier,
            format!("http-01 validates DNS names, and {domain} is not one"),
        ));
    }
    let mut target = Target::of(&url, va)?;
    let deadline = Deadline::after(profile.timeout);
    let mut host_header = domain.clone();

    for hop in 0..=MAX_REDIRECTS {
        let step = fetch(
            va,
            &url,
            &target,
            &host_header,
            key_authorization,
            hop,
            &deadline,
        )
        .await;
        match step {
            Ok(Step::Served(record)) => return Ok(record),
            Ok(Step::Redirect(next, next_target)) => {
                host_header = match next.port() {
                    Some(p) => format!("{}:{p}", next_target.host),
                    None => next_target.host.clone(),
                };
                url = next;
                target = next_target;
            }
            Err(failure) if hop == 0 => return Err(failure),
            Err(failure) => {
                tracing::debug!(
                    %url,
                    hop,
                    kind = ?failure.kind,
                    reason = %failure.detail,
                    "http-01 failed at a redirect target; the client is told only that it did not answer"
                );
                return Err(ValidationFailure::incorrect(REDIRECT_TARGET_FAILED));
            }
        }
    }
    // The loop returns on every path: the last hop that redirects again
    // fails in `fetch`.
    Err(ValidationFailure::internal(
        "redirect loop ended unexpectedly",
    ))
}

/// What one hop gave.
enum Step {
    /// The key authorization: the validation succeeded.
    Served(ValidationRecord),
    /// A redirect to an acceptable URL.
    Redirect(Url, Target),
}

/// Contacts one hop (`hop` 0 is the challenge URL) and reads its answer.
/// Failures here are detailed; the caller hides those of redirect targets.
async fn fetch(
    va: &Validator,
    url: &Url,
    target: &Target,
    host_header: &str,
    key_authorization: &str,
    hop: usize,
    deadline: &Deadline,
) -> Result<Step, ValidationFailure> {
    let profile = va.profile();
    let (resolved, allowed) = va.resolve_checked(&target.host, deadline).await?;
    let (stream, ip) = dial_first(
        &profile.ip_policy,
        &profile.name,
        &target.host,
        &allowed,
        target.port,
        deadline,
    )
    .await?;
    let (response, _conn) = if target.https {
        let sni = crate::tls::server_name(&target.host).ok_or_else(|| {
            ValidationFailure::connection(format!("invalid TLS server name in {url}"))
        })?;
        let connector = tokio_rustls::TlsConnector::from(va.https_tls.clone());
        let tls = deadline
            .run(
                FailureKind::Tls,
                || format!("in the TLS handshake with {ip} for {url}"),
                async {
                    connector.connect(sni, stream).await.map_err(|e| {
                        ValidationFailure::tls(format!(
                            "TLS handshake with {ip} for {url} failed: {e}"
                        ))
                    })
                },
            )
            .await?;
        send(tls, url, host_header, ip, deadline).await?
    } else {
        send(stream, url, host_header, ip, deadline).await?
    };

    let status = response.status();
    if is_redirect(status) {
        if hop == MAX_REDIRECTS {
            return Err(ValidationFailure::connection(format!(
                "too many redirects: {url} redirects again after {MAX_REDIRECTS} redirects"
            )));
        }
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .ok_or_else(|| {
                ValidationFailure::incorrect(format!(
                    "{url} answered {status} without a Location header"
                ))
            })?;
        let next = url.join(&location).map_err(|e| {
            ValidationFailure::connection(format!(
                "invalid redirect from {url} to \"{}\": {e}",
                excerpt(&location, 128)
            ))
        })?;
        tracing::debug!(from = %url, to = %next, %status, "http-01 redirect");
        let next_target = Target::of(&next, va)?;
        return Ok(Step::Redirect(next, next_target));
    }
    if status != StatusCode::OK {
        return Err(ValidationFailure::incorrect(format!(
            "{url} answered HTTP {status} (from {ip}), expected 200 with the key authorization"
        )));
    }
    let body = deadline
        .run(
            FailureKind::Connection,
            || format!("reading the response body of {url}"),
            read_body(response, url),
        )
        .await?;
    let text = String::from_utf8_lossy(&body);
    if text.trim_end() != key_authorization {
        return Err(ValidationFailure::incorrect(format!(
            "the response at {url} did not match the key authorization ({} bytes)",
            body.len()
        )));
    }
    Ok(Step::Served(ValidationRecord {
        hostname: target.host.clone(),
        port: Some(target.port),
        addresses_resolved: resolved,
        address_used: Some(ip),
        url: Some(url.to_string()),
    }))
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Where one hop goes.
struct Target {
    /// Normalised DNS name.
    host: String,
    port: u16,
    https: bool,
}

impl Target {
    /// Checks `url` (the challenge URL or a redirect's) before anything is
    /// contacted: scheme, port, a DNS name inside the profile.
    fn of(url: &Url, va: &Validator) -> Result<Self, ValidationFailure> {
        let profile = va.profile();
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(ValidationFailure::connection(format!(
                    "redirect to {url} refused: scheme {other} is not http or https"
                )))
            }
        };
        let port = match url.port() {
            Some(p) => p,
            None if https => profile.tls_alpn01_port,
            None => profile.http01_port,
        };
        let allowed = [80, 443, profile.http01_port, profile.tls_alpn01_port];
        if !allowed.contains(&port) {
            return Err(ValidationFailure::connection(format!(
                "redirect to {url} refused: only ports 80 and 443 are allowed"
            )));
        }
        let host = match url.host() {
            Some(Host::Ipv4(_) | Host::Ipv6(_)) => {
                return Err(ValidationFailure::connection(format!(
                    "redirect to {url} refused: redirect targets must be DNS names, not IP addresses"
                )))
            }
            Some(Host::Domain(name)) => {
                let name = normalise(name);
                if !is_dns_name(&name) {
                    return Err(ValidationFailure::connection(format!(
                        "redirect to {url} refused: invalid host name"
                    )));
                }
                va.resolvers.check_in_profile(&name)?;
                name
            }
            None => {
                return Err(ValidationFailure::connection(format!(
                    "redirect to {url} refused: no host"
                )))
            }
        };
        Ok(Self { host, port, https })
    }
}

/// LDH labels of 1..=63 characters, at most 253 in all.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Aborts the HTTP connection driver when dropped.
struct ConnGuard(JoinHandle<()>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends the GET over `io` (HTTP/1.1) and returns the response head.
async fn send<S>(
    io: S,
    url: &Url,
    host_header: &str,
    ip: IpAddr,
    deadline: &Deadline,
) -> Result<(Response<Incoming>, ConnGuard), ValidationFailure>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let failed = |e: hyper::Error| {
        ValidationFailure::connection(format!("HTTP request to {url} at {ip} failed: {e}"))
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let request = Request::get(path)
        .header(header::HOST, host_header)
        .header(header::USER_AGENT, USER_AGENT)
        .header(header::ACCEPT, "*/*")
        .header(header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| ValidationFailure::internal(format!("cannot build request for {url}: {e}")))?;
    deadline
        .run(
            FailureKind::Connection,
            || format!("waiting for {url} at {ip}"),
            async {
                let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
                    .await
                    .map_err(failed)?;
                let guard = ConnGuard(tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "http-01 connection ended");
                    }
                }));
                let response = sender.send_request(request).await.map_err(failed)?;
                Ok((response, guard))
            },
        )
        .await
}

async fn read_body(response: Response<Incoming>, url: &Url) -> Result<Bytes, ValidationFailure> {
    match Limited::new(response.into_body(), MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ValidationFailure::incorrect(
            format!("the response body of {url} exceeds {MAX_BODY} bytes"),
        )),
        Err(e) => Err(ValidationFailure::connection(format!(
            "reading the response body of {url} failed: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(is_dns_name("www.example.test"));
        assert!(is_dns_name("_acme-challenge.x.test"));
        assert!(!is_dns_name("bad..name"));
        assert!(!is_dns_name("-bad.test"));
        assert!(!is_dns_name("sp ace.test"));
    }

    #[test]
    fn redirect_statuses() {
        for s in [301, 302, 303, 307, 308] {
            assert!(is_redirect(StatusCode::from_u16(s).expect("status")));
        }
        assert!(!is_redirect(StatusCode::NOT_MODIFIED));
        assert!(!is_redirect(StatusCode::OK));
    }
}
