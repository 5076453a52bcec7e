//! A minimal HTTP/1.1 keep-alive client for the generator's hot path: the request is written
//! to the socket in one write and the answer parsed in place with `httparse`. A client stack
//! with a connection task and a channel per request costs more CPU than the target's own
//! transport on a small machine, and the generator must not be what limits a benchmark.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::Failure;

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest response body accepted (answers to events are small).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One keep-alive connection.
#[derive(Debug)]
pub(crate) struct Http1 {
    stream: TcpStream,
    read: BytesMut,
    write: Vec<u8>,
    closed: bool,
    /// The server closed its side.
    eof: bool,
}

impl Http1 {
    pub(crate) fn new(stream: TcpStream) -> Http1 {
        Http1 {
            stream,
            read: BytesMut::with_capacity(8 * 1024),
            write: Vec::with_capacity(4 * 1024),
            closed: false,
            eof: false,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        !self.closed
    }

    /// POSTs `body` to `path` and reads the whole answer: (status, body).
    pub(crate) async fn post(
        &mut self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(u16, Bytes), Failure> {
        self.write.clear();
        self.write.extend_from_slice(b"POST ");
        self.write.extend_from_slice(path.as_bytes());
        self.write.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        self.write.extend_from_slice(host.as_bytes());
        for (name, value) in headers {
            self.write.extend_from_slice(b"\r\n");
            self.write.extend_from_slice(name.as_bytes());
            self.write.extend_from_slice(b": ");
            self.write.extend_from_slice(value.as_bytes());
        }
        self.write.extend_from_slice(b"\r\ncontent-length: ");
        self.write
            .extend_from_slice(body.len().to_string().as_bytes());
        self.write.extend_from_slice(b"\r\n\r\n");
        self.write.extend_from_slice(body);
        let result = self.exchange().await;
        if result.is_err() {
            self.closed = true;
        }
        result
    }

    async fn exchange(&mut self) -> Result<(u16, Bytes), Failure> {
        // A server may answer (413, say) and close before reading a large body; its answer
        // is still read after a failed write.
        let wrote = self.stream.write_all(&self.write).await;
        if wrote.is_err() {
            self.closed = true;
        }
        loop {
            if let Some(answer) = self.parse()? {
                return Ok(answer);
            }
            if self.read.len() > MAX_HEAD + MAX_BODY {
                return Err(Failure::Io);
            }
            self.read.reserve(8 * 1024);
            if self.eof {
                return Err(Failure::Io);
            }
            let n = self
                .stream
                .read_buf(&mut self.read)
                .await
                .map_err(|_| Failure::Io)?;
            if n == 0 {
                // Parsed once more: an answer without a length ends here.
                self.eof = true;
            }
        }
    }

    /// A complete answer at the front of the read buffer, taken out of it; None if more
    /// bytes are needed.
    fn parse(&mut self) -> Result<Option<(u16, Bytes)>, Failure> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let head = match response.parse(&self.read) {
            Ok(httparse::Status::Complete(head)) => head,
            Ok(httparse::Status::Partial) if self.read.len() > MAX_HEAD => return Err(Failure::Io),
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(Failure::Io),
        };
        let status = response.code.ok_or(Failure::Io)?;
        if (100..200).contains(&status) && status != 101 {
            // An interim answer (100 Continue, 103 Early Hints): the final one follows.
            self.read.advance(head);
            return self.parse();
        }
        if status == 413 {
            // Refused by its length, the body was likely left unread, so the server closes
            // the connection (hyper does, without saying `connection: close`): a request sent
            // on it next would fail for nothing it did.
            self.closed = true;
        }
        let http10 = response.version == Some(0);
        let mut length = None;
        let mut chunked = false;
        for header in response.headers.iter() {
            if header.name.eq_ignore_ascii_case("content-length") {
                let text = std::str::from_utf8(header.value).map_err(|_| Failure::Io)?;
                length = Some(text.trim().parse::<usize>().map_err(|_| Failure::Io)?);
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = header.value.eq_ignore_ascii_case(b"chunked");
            } else if header.name.eq_ignore_ascii_case("connection")
                && header.value.eq_ignore_ascii_case(b"close")
            {
                self.closed = true;
            }
        }
        if chunked {
            return match dechunk(&self.read[head..])? {
                Some((body, used)) => {
                    self.read.advance(head + used);
                    Ok(Some((status, body)))
                }
                None => Ok(None),
            };
        }
        let length = match length {
            Some(length) => length,
            None if status == 204 || status == 304 => 0,
            // No length: the body runs to the end of the connection.
            None => {
                self.closed = true;
                if !self.eof {
                    return Ok(None);
                }
                self.read.len() - head
            }
        };
        if http10 {
            self.closed = true;
        }
        if length > MAX_BODY {
            return Err(Failure::Io);
        }
        if self.read.len() < head + length {
            return Ok(None);
        }
        self.read.advance(head);
        let body = self.read.split_to(length).freeze();
        Ok(Some((status, body)))
    }
}

/// A chunked body and the bytes it took, or None when incomplete.
fn dechunk(mut input: &[u8]) -> Result<Option<(Bytes, usize)>, Failure> {
    let total = input.len();
    let mut body = Vec::new();
    loop {
        let Some(line_end) = input.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&input[..line_end]).map_err(|_| Failure::Io)?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| Failure::Io)?;
        if body.len() + size > MAX_BODY {
            return Err(Failure::Io);
        }
        let rest = &input[line_end + 2..];
        if size == 0 {
            // No trailers expected: the final CRLF ends the body.
            if rest.len() < 2 {
                return Ok(None);
            }
            let used = total - rest.len() + 2;
            return Ok(Some((Bytes::from(body), used)));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&rest[..size]);
        input = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection to a server that sends `wire` whatever it is asked.
    async fn answered_with(wire: &'static [u8]) -> Http1 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let _ = socket.write_all(wire).await;
        });
        Http1::new(TcpStream::connect(address).await.expect("connect"))
    }

    #[tokio::test]
    async fn skips_interim_answers_and_reads_bodies_without_a_length_to_the_end() {
        let mut c = answered_with(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
        )
        .await;
        let (status, body) = c.post("h", "/", &[], b"{}").await.expect("answer");
        assert_eq!((status, &body[..]), (201, &b"ok"[..]));
        assert!(c.is_open());

        let mut c = answered_with(b"HTTP/1.0 200 OK\r\n\r\nuntil the end").await;
        let (status, body) = c.post("h", "/", &[], b"{}").await.expect("answer");
        assert_eq!((status, &body[..]), (200, &b"until the end"[..]));
        assert!(!c.is_open(), "a body without a length ends the connection");
    }

    #[tokio::test]
    async fn a_connection_that_was_answered_413_is_not_reused() {
        let mut c =
            answered_with(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n").await;
        let (status, _) = c.post("h", "/", &[], b"{}").await.expect("answer");
        assert_eq!(status, 413);
        assert!(!c.is_open(), "the server may not have read the body");
    }

    #[test]
    fn dechunks_bodies_and_waits_for_more() {
        let wire = b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\nNEXT";
        let (body, used) = dechunk(wire).expect("valid").expect("complete");
        assert_eq!(&body[..], b"Wikipedia");
        assert_eq!(&wire[used..], b"NEXT");
        assert_eq!(dechunk(b"4\r\nWi").expect("valid"), None);
        assert!(dechunk(b"zz\r\n").is_err());
    }
}
