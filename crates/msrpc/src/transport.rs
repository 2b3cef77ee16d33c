//! Fragment framing over a byte stream (`ncacn_ip_tcp`).

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::RpcError;
use crate::pdu::{Header, HEADER_LEN};

/// Reads one complete fragment. Fragments longer than `max_len` are refused
/// (the negotiated `max_recv_frag`, or a generous bound before bind).
/// A clean EOF before the first octet is [`RpcError::ConnectionClosed`].
pub async fn read_fragment<R: AsyncRead + Unpin>(
    r: &mut R,
    max_len: usize,
) -> Result<Vec<u8>, RpcError> {
    let mut head = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        let n = r.read(&mut head[got..]).await.map_err(closed)?;
        if n == 0 {
            return Err(RpcError::ConnectionClosed(if got == 0 {
                ""
            } else {
                " inside a PDU header"
            }));
        }
        got += n;
    }
    let h = Header::parse(&head)?;
    let len = usize::from(h.frag_len);
    if len > max_len {
        return Err(RpcError::Protocol(format!(
            "fragment of {len} octets exceeds the negotiated {max_len}"
        )));
    }
    let mut buf = vec![0u8; len];
    buf[..HEADER_LEN].copy_from_slice(&head);
    r.read_exact(&mut buf[HEADER_LEN..]).await.map_err(closed)?;
    Ok(buf)
}

/// Writes one fragment.
pub async fn write_fragment<W: AsyncWrite + Unpin>(w: &mut W, frag: &[u8]) -> Result<(), RpcError> {
    w.write_all(frag).await.map_err(closed)?;
    w.flush().await.map_err(closed)?;
    Ok(())
}

/// Maps "the peer went away" I/O errors to [`RpcError::ConnectionClosed`].
fn closed(e: std::io::Error) -> RpcError {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::UnexpectedEof => RpcError::ConnectionClosed(" inside a PDU"),
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
            RpcError::ConnectionClosed(" (reset)")
        }
        _ => RpcError::Io(e),
    }
}
