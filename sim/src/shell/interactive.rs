//! `sh` reading its commands from stdin, as `kubectl exec -i POD -- sh` and `kubectl run -it
//! ... -- sh` run it: each line is run as it arrives and its output written at once; `exit [N]`
//! or the end of stdin (Ctrl-D on a terminal) ends the shell.
//!
//! On a terminal (`tty`) the shell is interactive and does what busybox ash's line editing does
//! on a raw terminal: it prints its prompt, echoes what is typed, erases on backspace, drops
//! the line on Ctrl-C, ends on Ctrl-D at an empty line, and every `\n` it writes reaches the
//! terminal as `\r\n` (stderr shares the terminal). Without a terminal there is no prompt and
//! no echo, and stdin is split on `\n`, as a script.

use super::run::Session;
use super::{Host, Output, Stream};
use std::collections::BTreeMap;
use tokio::sync::mpsc;

/// A program's stdin: chunks of bytes as they arrive; the channel closed is end of file.
pub type Stdin = mpsc::UnboundedReceiver<Vec<u8>>;

/// How the shell's stdin and stdout are connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    /// A terminal (`tty: true`): prompt, echo, line editing, `\r\n`.
    pub tty: bool,
    /// The prompt an interactive shell prints (busybox ash: `~ $ ` for a user, `/ # ` for root).
    pub prompt: String,
}

/// Output through a terminal: `\n` becomes `\r\n`, and both streams go to the terminal.
struct Tty<'a> {
    inner: &'a mut dyn Output,
}

impl Output for Tty<'_> {
    fn write(&mut self, _stream: Stream, text: &str) {
        self.inner
            .write(Stream::Stdout, &text.replace('\n', "\r\n"));
    }
}

/// Runs `sh` on `stdin` until `exit` or the end of its input; returns its exit code.
pub(crate) async fn run(
    env: &BTreeMap<String, String>,
    host: &dyn Host,
    stdin: &mut Stdin,
    term: &Terminal,
    out: &mut dyn Output,
) -> i32 {
    let mut session = Session::new(env, host);
    let mut editor = Editor::default();
    if term.tty {
        out.write(Stream::Stdout, &term.prompt);
    }
    loop {
        let Some(chunk) = stdin.recv().await else {
            // End of input: a last line without its newline still runs (not on a terminal,
            // where it was never entered).
            if !term.tty
                && !editor.line.is_empty()
                && let Some(code) = session
                    .line(&String::from_utf8_lossy(&editor.line), out)
                    .await
            {
                return code;
            }
            return session.last();
        };
        for key in editor.feed(&chunk, term.tty) {
            match key {
                Key::Echo(text) => out.write(Stream::Stdout, &text),
                Key::Line(line) => {
                    let code = if term.tty {
                        session.line(&line, &mut Tty { inner: out }).await
                    } else {
                        session.line(&line, out).await
                    };
                    if let Some(code) = code {
                        return code;
                    }
                    if term.tty {
                        out.write(Stream::Stdout, &term.prompt);
                    }
                }
                Key::Eof => return session.last(),
                Key::Prompt => out.write(Stream::Stdout, &term.prompt),
            }
        }
    }
}

/// What the line editor made of some input.
#[derive(Debug, PartialEq, Eq)]
enum Key {
    /// Text to echo to the terminal.
    Echo(String),
    /// A complete line to run.
    Line(String),
    /// Ctrl-C dropped the line: prompt again.
    Prompt,
    /// Ctrl-D at an empty line.
    Eof,
}

/// The line being typed, and where an escape sequence is.
#[derive(Default)]
struct Editor {
    line: Vec<u8>,
    /// Bytes still to skip of an escape sequence (arrow keys: `ESC [ A`).
    escape: u8,
}

impl Editor {
    fn feed(&mut self, chunk: &[u8], tty: bool) -> Vec<Key> {
        let mut keys = Vec::new();
        if !tty {
            for &b in chunk {
                if b == b'\n' {
                    let line = std::mem::take(&mut self.line);
                    keys.push(Key::Line(String::from_utf8_lossy(&line).into_owned()));
                } else {
                    self.line.push(b);
                }
            }
            return keys;
        }
        let mut echo = Vec::new();
        let flush = |echo: &mut Vec<u8>, keys: &mut Vec<Key>| {
            if !echo.is_empty() {
                keys.push(Key::Echo(String::from_utf8_lossy(echo).into_owned()));
                echo.clear();
            }
        };
        for &b in chunk {
            if self.escape > 0 {
                self.escape -= 1;
                if self.escape == 1 && b != b'[' && b != b'O' {
                    self.escape = 0;
                }
                continue;
            }
            match b {
                b'\r' | b'\n' => {
                    echo.extend_from_slice(b"\r\n");
                    flush(&mut echo, &mut keys);
                    let line = std::mem::take(&mut self.line);
                    keys.push(Key::Line(String::from_utf8_lossy(&line).into_owned()));
                }
                0x7f | 0x08 => {
                    // Erase one character (all the bytes of a UTF-8 one).
                    while let Some(last) = self.line.pop() {
                        if last & 0xc0 != 0x80 {
                            break;
                        }
                    }
                    echo.extend_from_slice(b"\x08 \x08");
                }
                0x03 => {
                    echo.extend_from_slice(b"^C\r\n");
                    flush(&mut echo, &mut keys);
                    self.line.clear();
                    keys.push(Key::Prompt);
                }
                0x04 if self.line.is_empty() => {
                    echo.extend_from_slice(b"\r\n");
                    flush(&mut echo, &mut keys);
                    keys.push(Key::Eof);
                    return keys;
                }
                0x1b => self.escape = 2,
                b if b < 0x20 && b != b'\t' => {}
                b => {
                    self.line.push(b);
                    echo.push(b);
                }
            }
        }
        flush(&mut echo, &mut keys);
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Captured, HttpReply, HttpRequest};
    use super::*;

    struct Echoing;

    impl Host for Echoing {
        fn http(&self, req: &HttpRequest) -> HttpReply {
            HttpReply::Response {
                status: 200,
                body: format!("answer from {}\n", req.url),
            }
        }
        fn hostname(&self) -> String {
            "client".into()
        }
    }

    async fn session(input: &[&[u8]], tty: bool) -> (Captured, i32) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for chunk in input {
            tx.send(chunk.to_vec()).unwrap();
        }
        drop(tx);
        let term = Terminal {
            tty,
            prompt: "~ $ ".into(),
        };
        let mut out = Captured::default();
        let code = run(&BTreeMap::new(), &Echoing, &mut rx, &term, &mut out).await;
        (out, code)
    }

    #[tokio::test]
    async fn lines_run_as_a_script_without_a_terminal() {
        let (out, code) = session(
            &[b"curl -s h:5000/hel", b"lo\necho $HOSTNAME\nnosuch\n"],
            false,
        )
        .await;
        assert_eq!(out.stdout, "answer from http://h:5000/hello\nclient\n");
        assert_eq!(out.stderr, "sh: nosuch: not found\n");
        assert_eq!(code, 127, "the end of stdin exits with $?");
        let (out, code) = session(&[b"echo a\nexit 4\necho never\n"], false).await;
        assert_eq!((out.stdout.as_str(), code), ("a\n", 4));
        let (out, code) = session(&[b"echo last"], false).await;
        assert_eq!((out.stdout.as_str(), code), ("last\n", 0));
    }

    #[tokio::test]
    async fn a_terminal_prompts_echoes_and_edits() {
        let (out, code) = session(&[b"echo hx\x7fi\r", b"\x1b[Afalse\x03", b"\x04"], true).await;
        assert_eq!(
            out.stdout,
            "~ $ echo hx\x08 \x08i\r\nhi\r\n~ $ false^C\r\n~ $ \r\n"
        );
        assert_eq!(code, 0);
        let (out, code) = session(&[b"nosuch\rexit 3\r"], true).await;
        assert_eq!(
            out.stdout,
            "~ $ nosuch\r\nsh: nosuch: not found\r\n~ $ exit 3\r\n"
        );
        assert_eq!(code, 3);
    }
}
