//! The grammar the runbooks' scripts use: simple commands with redirections, joined by
//! `;`, newlines, `&&` and `||`, in `for ... in ...; do ...; done` and
//! `while ...; do ...; done` loops. Anything else is refused with a reason.

use super::lex::{Token, Word, lex};

/// Where a redirection sends a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// `/dev/null`.
    Null,
    /// Another descriptor (`2>&1`, `>&2`).
    Fd(u8),
    /// A file: not modelled.
    File(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Redirect {
    pub fd: u8,
    pub target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cmd {
    Simple {
        words: Vec<Word>,
        redirects: Vec<Redirect>,
    },
    /// Run in order; the status is the last one's.
    Seq(Vec<Cmd>),
    And(Box<Cmd>, Box<Cmd>),
    Or(Box<Cmd>, Box<Cmd>),
    For {
        var: String,
        items: Vec<Word>,
        body: Box<Cmd>,
    },
    While {
        cond: Box<Cmd>,
        body: Box<Cmd>,
    },
}

/// Parses a script; the error is the reason it cannot be run.
pub(crate) fn parse(src: &str) -> Result<Cmd, String> {
    let tokens = lex(src)?;
    let mut p = Parser { tokens, pos: 0 };
    let cmd = p.list(&[])?;
    match p.peek() {
        None => Ok(cmd),
        Some(t) => Err(format!("syntax error: unexpected {}", describe(t))),
    }
}

fn describe(t: &Token) -> String {
    match t {
        Token::Word(w) => format!("\"{}\"", w.display()),
        Token::Op("\n") => "newline".into(),
        Token::Op(o) => format!("\"{o}\""),
        Token::Redirect(o, _) => format!("\"{o}\""),
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn keyword(&self) -> Option<String> {
        match self.peek() {
            Some(Token::Word(w)) => w.literal(),
            _ => None,
        }
    }

    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(Token::Op(";" | "\n"))) {
            self.pos += 1;
        }
    }

    /// Commands up to one of the `stop` keywords (not consumed) or the end.
    fn list(&mut self, stop: &[&str]) -> Result<Cmd, String> {
        let mut cmds = Vec::new();
        loop {
            self.skip_separators();
            match self.peek() {
                None => break,
                Some(Token::Op(")")) => break,
                _ => {}
            }
            if self.keyword().is_some_and(|k| stop.contains(&k.as_str())) {
                break;
            }
            cmds.push(self.and_or(stop)?);
            match self.peek() {
                Some(Token::Op(";" | "\n")) => {}
                Some(Token::Op("&")) => {
                    return Err("background jobs (&) are not modelled".into());
                }
                _ => break,
            }
        }
        Ok(if cmds.len() == 1 {
            cmds.remove(0)
        } else {
            Cmd::Seq(cmds)
        })
    }

    fn and_or(&mut self, stop: &[&str]) -> Result<Cmd, String> {
        let mut left = self.command(stop)?;
        loop {
            match self.peek() {
                Some(Token::Op("&&")) => {
                    self.pos += 1;
                    self.skip_newlines();
                    left = Cmd::And(Box::new(left), Box::new(self.command(stop)?));
                }
                Some(Token::Op("||")) => {
                    self.pos += 1;
                    self.skip_newlines();
                    left = Cmd::Or(Box::new(left), Box::new(self.command(stop)?));
                }
                Some(Token::Op("|")) => return Err("pipes (|) are not modelled".into()),
                _ => return Ok(left),
            }
        }
    }

    fn skip_newlines(&mut self) {
        while matches!(self.peek(), Some(Token::Op("\n"))) {
            self.pos += 1;
        }
    }

    fn expect_keyword(&mut self, k: &str) -> Result<(), String> {
        if self.keyword().as_deref() == Some(k) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!(
                "syntax error: expected \"{k}\", found {}",
                self.peek().map_or("the end".into(), describe)
            ))
        }
    }

    fn command(&mut self, stop: &[&str]) -> Result<Cmd, String> {
        match self.keyword().as_deref() {
            Some("for") => {
                self.pos += 1;
                let var = self
                    .keyword()
                    .filter(|v| v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                    .ok_or("syntax error: bad for loop variable")?;
                self.pos += 1;
                let mut items = Vec::new();
                if self.keyword().as_deref() == Some("in") {
                    self.pos += 1;
                    while let Some(Token::Word(w)) = self.peek() {
                        items.push(w.clone());
                        self.pos += 1;
                    }
                } else {
                    return Err("a for loop without \"in\" (over \"$@\") is not modelled".into());
                }
                self.skip_separators();
                self.expect_keyword("do")?;
                let body = self.list(&["done"])?;
                self.expect_keyword("done")?;
                Ok(Cmd::For {
                    var,
                    items,
                    body: Box::new(body),
                })
            }
            Some("while") => {
                self.pos += 1;
                let cond = self.list(&["do"])?;
                self.expect_keyword("do")?;
                let body = self.list(&["done"])?;
                self.expect_keyword("done")?;
                Ok(Cmd::While {
                    cond: Box::new(cond),
                    body: Box::new(body),
                })
            }
            Some(k @ ("if" | "until" | "case" | "function" | "{")) => {
                Err(format!("\"{k}\" is not modelled"))
            }
            Some(k) if stop.contains(&k) => Err(format!("syntax error: unexpected \"{k}\"")),
            _ => self.simple(),
        }
    }

    fn simple(&mut self) -> Result<Cmd, String> {
        let mut words = Vec::new();
        let mut redirects = Vec::new();
        loop {
            match self.peek() {
                Some(Token::Word(w)) => {
                    if let Some(l) = w.literal()
                        && words.is_empty()
                        && l.contains('=')
                        && !l.starts_with('=')
                    {
                        return Err("variable assignments are not modelled".into());
                    }
                    words.push(w.clone());
                }
                Some(Token::Redirect(op, target)) => {
                    redirects.extend(redirect(op, target.as_ref())?);
                }
                Some(Token::Op("(")) => return Err("subshells are not modelled".into()),
                _ => break,
            }
            self.pos += 1;
        }
        if words.is_empty() && redirects.is_empty() {
            return Err(format!(
                "syntax error: unexpected {}",
                self.peek().map_or("end of file".into(), describe)
            ));
        }
        Ok(Cmd::Simple { words, redirects })
    }
}

fn redirect(op: &str, target: Option<&Word>) -> Result<Vec<Redirect>, String> {
    if let Some((left, fd)) = op.split_once(">&") {
        let from = if left.is_empty() { 1 } else { parse_fd(left)? };
        return Ok(vec![Redirect {
            fd: from,
            target: Target::Fd(parse_fd(fd)?),
        }]);
    }
    let file = target
        .and_then(Word::literal)
        .ok_or("redirection to an expanded name is not modelled")?;
    let to = if file == "/dev/null" {
        Target::Null
    } else {
        Target::File(file)
    };
    Ok(match op {
        ">" | ">>" | "1>" | "1>>" => vec![Redirect { fd: 1, target: to }],
        "2>" | "2>>" => vec![Redirect { fd: 2, target: to }],
        "&>" => vec![
            Redirect {
                fd: 1,
                target: to.clone(),
            },
            Redirect { fd: 2, target: to },
        ],
        "<" | "0<" if matches!(to, Target::Null) => vec![],
        other => return Err(format!("the redirection \"{other}\" is not modelled")),
    })
}

fn parse_fd(s: &str) -> Result<u8, String> {
    match s.parse::<u8>() {
        Ok(n @ 1..=2) => Ok(n),
        _ => Err(format!("file descriptor \"{s}\" is not modelled")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_and_lists() {
        let cmd = parse("while true; do curl -s a:1/x; sleep 1; done").unwrap();
        assert!(matches!(cmd, Cmd::While { .. }));
        let Cmd::For { var, items, body } =
            parse("for i in $(seq 1 10); do curl -s helloworld:5000/hello; done").unwrap()
        else {
            panic!("a for loop")
        };
        assert_eq!(var, "i");
        assert_eq!(items.len(), 1);
        assert!(matches!(*body, Cmd::Simple { .. }));
        assert!(matches!(parse("echo a && echo b; echo c").unwrap(), Cmd::Seq(v) if v.len() == 2));
    }

    #[test]
    fn refusals_say_why() {
        assert!(parse("curl a | grep b").unwrap_err().contains("pipes"));
        assert!(
            parse("if true; then echo; fi")
                .unwrap_err()
                .contains("\"if\"")
        );
        assert!(
            parse("for i in 1; do echo")
                .unwrap_err()
                .contains("expected \"done\"")
        );
        assert!(parse("curl a > out.txt").is_ok());
        assert!(parse("sleep 1 &").unwrap_err().contains("background"));
    }
}
