//! A small SMTP client on a plain tokio TCP stream: EHLO (HELO for old servers), MAIL FROM, RCPT TO, DATA
//! with dot-stuffing, QUIT, checking every reply code. A message counts as delivered only on the 250 that
//! answers its final dot.
//!
//! Plain SMTP only: no TLS and no authentication, so point it at a relay on the same host or a trusted
//! network (a local Postfix, or the school's internal relay). STARTTLS and SMTP AUTH are future work.
//! Written here rather than pulling `lettre`: the office needs one conversation, about a hundred lines,
//! and nothing of lettre's TLS, pooling or MIME building yet.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The SMTP server email notifications are handed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// The envelope sender and `From:` address.
    pub from: String,
    /// The name the office gives itself in EHLO.
    pub hello_name: String,
}

/// The longest one whole conversation may take before the attempt counts as failed.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest reply line read from a server (RFC 5321 allows 512; this leaves room for chatty ones).
const MAX_LINE: u64 = 2048;

#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("could not connect to the SMTP server {server}: {source}")]
    Connect {
        server: String,
        source: std::io::Error,
    },
    #[error("the SMTP connection failed during {stage}: {source}")]
    Io {
        stage: &'static str,
        source: std::io::Error,
    },
    #[error("the SMTP server closed the connection during {0}")]
    Closed(&'static str),
    #[error("the SMTP server sent an unreadable reply during {0}")]
    Malformed(&'static str),
    #[error("the SMTP server answered {code} to {stage}: {text}")]
    Refused {
        stage: &'static str,
        code: u16,
        text: String,
    },
    #[error("the SMTP server did not finish within {} s", SMTP_TIMEOUT.as_secs())]
    Timeout,
}

/// Hands `message` (headers and body, CRLF line endings) to the server for `to`.
pub(crate) async fn send(config: &SmtpConfig, to: &str, message: &str) -> Result<(), SmtpError> {
    tokio::time::timeout(SMTP_TIMEOUT, converse(config, to, message))
        .await
        .unwrap_or(Err(SmtpError::Timeout))
}

async fn converse(config: &SmtpConfig, to: &str, message: &str) -> Result<(), SmtpError> {
    let stream = TcpStream::connect((config.host.as_str(), config.port))
        .await
        .map_err(|source| SmtpError::Connect {
            server: format!("{}:{}", config.host, config.port),
            source,
        })?;
    let mut session = Session {
        stream: BufReader::new(stream),
    };
    session.expect("the greeting", &[220]).await?;
    session
        .send_line(&format!("EHLO {}", config.hello_name), "EHLO")
        .await?;
    let ehlo = session.reply("EHLO").await?;
    let eight_bit_mime = match ehlo.code {
        250 => ehlo
            .lines
            .iter()
            .any(|line| line.eq_ignore_ascii_case("8BITMIME")),
        // A server too old for EHLO.
        500 | 502 => {
            session
                .command(&format!("HELO {}", config.hello_name), "HELO", &[250])
                .await?;
            false
        }
        code => {
            return Err(SmtpError::Refused {
                stage: "EHLO",
                code,
                text: ehlo.lines.join(" "),
            })
        }
    };
    let body_parameter = if eight_bit_mime && !message.is_ascii() {
        " BODY=8BITMIME"
    } else {
        ""
    };
    session
        .command(
            &format!("MAIL FROM:<{}>{body_parameter}", config.from),
            "MAIL FROM",
            &[250],
        )
        .await?;
    session
        .command(&format!("RCPT TO:<{to}>"), "RCPT TO", &[250, 251])
        .await?;
    session.command("DATA", "DATA", &[354]).await?;
    session.write(&dot_stuffed(message), "the message").await?;
    session.expect("the end of the message", &[250]).await?;
    // The message is accepted; a server that drops the line instead of saying goodbye changes nothing.
    if session.send_line("QUIT", "QUIT").await.is_ok() {
        let _ = session.reply("QUIT").await;
    }
    Ok(())
}

/// `message` as DATA carries it: every line that starts with a dot gets another, and a line holding only
/// a dot ends it.
pub(crate) fn dot_stuffed(message: &str) -> String {
    let message = message.strip_suffix("\r\n").unwrap_or(message);
    let mut out = String::with_capacity(message.len() + 16);
    for line in message.split("\r\n") {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    out
}

struct Reply {
    code: u16,
    /// The text of each line, after the code and separator.
    lines: Vec<String>,
}

struct Session {
    stream: BufReader<TcpStream>,
}

impl Session {
    async fn write(&mut self, text: &str, stage: &'static str) -> Result<(), SmtpError> {
        let stream = self.stream.get_mut();
        stream
            .write_all(text.as_bytes())
            .await
            .map_err(|source| SmtpError::Io { stage, source })?;
        stream
            .flush()
            .await
            .map_err(|source| SmtpError::Io { stage, source })
    }

    async fn send_line(&mut self, line: &str, stage: &'static str) -> Result<(), SmtpError> {
        self.write(&format!("{line}\r\n"), stage).await
    }

    /// Reads one reply, which may span lines (`250-...` continues, `250 ...` ends).
    async fn reply(&mut self, stage: &'static str) -> Result<Reply, SmtpError> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = (&mut self.stream)
                .take(MAX_LINE)
                .read_line(&mut line)
                .await
                .map_err(|source| SmtpError::Io { stage, source })?;
            if read == 0 {
                return Err(SmtpError::Closed(stage));
            }
            let line = line.trim_end_matches(['\r', '\n']);
            let code: u16 = line
                .get(..3)
                .and_then(|digits| digits.parse().ok())
                .ok_or(SmtpError::Malformed(stage))?;
            lines.push(line.get(4..).unwrap_or_default().to_owned());
            match line.as_bytes().get(3) {
                Some(b'-') if lines.len() < 100 => continue,
                Some(b'-') => return Err(SmtpError::Malformed(stage)),
                _ => return Ok(Reply { code, lines }),
            }
        }
    }

    async fn expect(&mut self, stage: &'static str, ok: &[u16]) -> Result<Reply, SmtpError> {
        let reply = self.reply(stage).await?;
        if ok.contains(&reply.code) {
            Ok(reply)
        } else {
            let mut text = reply.lines.join(" ");
            if text.len() > 200 {
                let cut = (0..=200)
                    .rev()
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap_or(0);
                text.truncate(cut);
            }
            Err(SmtpError::Refused {
                stage,
                code: reply.code,
                text,
            })
        }
    }

    async fn command(
        &mut self,
        line: &str,
        stage: &'static str,
        ok: &[u16],
    ) -> Result<Reply, SmtpError> {
        self.send_line(line, stage).await?;
        self.expect(stage, ok).await
    }
}

#[cfg(test)]
mod tests {
    use super::dot_stuffed;

    #[test]
    fn dot_stuffing() {
        // (message, what DATA carries)
        let table = [
            ("Hello\r\nworld", "Hello\r\nworld\r\n.\r\n"),
            ("Hello\r\nworld\r\n", "Hello\r\nworld\r\n.\r\n"),
            (".\r\n.hidden\r\nend", "..\r\n..hidden\r\nend\r\n.\r\n"),
            ("a\r\n\r\nb", "a\r\n\r\nb\r\n.\r\n"),
        ];
        for (message, wire) in table {
            assert_eq!(dot_stuffed(message), wire, "{message:?}");
        }
    }
}
