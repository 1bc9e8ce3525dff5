//! `curl`: the options runbooks use, one request per URL, and what curl prints for the reply
//! (body on stdout, errors on stderr unless `-s` without `-S`, `-w` after the body, `-v`'s
//! trace on stderr, `-f`'s exit 22).

use super::{HttpReply, HttpRequest, Stream};

/// What one curl invocation asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Curl {
    pub urls: Vec<String>,
    silent: bool,
    show_error: bool,
    insecure: bool,
    verbose: bool,
    fail: bool,
    discard_body: bool,
    include: bool,
    head: bool,
    write_out: Option<String>,
    max_time: Option<u32>,
    method: Option<String>,
}

/// Why curl will not run: a usage error curl itself reports, or an option the model lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CurlError {
    /// curl's own message (exit 2).
    Usage(String),
    Unmodelled(String),
}

/// Options taking a value that change nothing the model answers.
const IGNORED_WITH_VALUE: &[&str] = &[
    "-H",
    "--header",
    "-A",
    "--user-agent",
    "--connect-timeout",
    "--retry",
    "--retry-delay",
    "-e",
    "--referer",
    "--resolve",
];
/// Flags that change nothing the model answers.
const IGNORED_FLAGS: &[&str] = &[
    "-L",
    "--location",
    "--http1.1",
    "-4",
    "--ipv4",
    "--no-progress-meter",
    "--compressed",
    "-N",
    "--no-buffer",
];

pub(crate) fn parse(args: &[String]) -> Result<Curl, CurlError> {
    let c = parse_options(args)?;
    if c.urls.is_empty() {
        return Err(CurlError::Usage(
            "curl: try 'curl --help' or 'curl --manual' for more information\n".into(),
        ));
    }
    Ok(c)
}

fn parse_options(args: &[String]) -> Result<Curl, CurlError> {
    let mut c = Curl::default();
    let mut i = 0;
    let value = |i: &mut usize, opt: &str| -> Result<String, CurlError> {
        *i += 1;
        args.get(*i).cloned().ok_or_else(|| {
            CurlError::Usage(format!(
                "curl: option {opt}: requires parameter\ncurl: try 'curl --help' or 'curl --manual' for more information\n"
            ))
        })
    };
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "-s" | "--silent" => c.silent = true,
            "-S" | "--show-error" => c.show_error = true,
            "-k" | "--insecure" => c.insecure = true,
            "-v" | "--verbose" => c.verbose = true,
            "-f" | "--fail" => c.fail = true,
            "-i" | "--include" => c.include = true,
            "-I" | "--head" => c.head = true,
            "-o" | "--output" => {
                let file = value(&mut i, a)?;
                if file != "/dev/null" {
                    return Err(CurlError::Unmodelled(format!(
                        "writing the body to {file:?} is not modelled (only -o /dev/null)"
                    )));
                }
                c.discard_body = true;
            }
            "-w" | "--write-out" => c.write_out = Some(value(&mut i, a)?),
            "-m" | "--max-time" => {
                let v = value(&mut i, a)?;
                let secs = v.parse::<f64>().map_err(|_| {
                    CurlError::Usage(format!(
                        "curl: option {a}: expected a proper numerical parameter\n"
                    ))
                })?;
                c.max_time = Some(secs.ceil().clamp(1.0, 86_400.0) as u32);
            }
            "-X" | "--request" => c.method = Some(value(&mut i, a)?),
            "--url" => c.urls.push(value(&mut i, a)?),
            _ if IGNORED_FLAGS.contains(&a) => {}
            _ if IGNORED_WITH_VALUE.contains(&a) => {
                value(&mut i, a)?;
            }
            _ if a.starts_with("--") => {
                return Err(CurlError::Unmodelled(format!(
                    "the option {a} is not modelled"
                )));
            }
            _ if a.starts_with('-') && a.len() > 2 => {
                // Combined short flags (-sS, -fsSk); a value-taking one must come last.
                let flags: Vec<String> = a[1..].chars().map(|f| format!("-{f}")).collect();
                let mut expanded: Vec<String> = flags.clone();
                let last_takes_value = matches!(
                    flags.last().map(String::as_str),
                    Some("-o" | "-w" | "-m" | "-X" | "-H" | "-A" | "-e")
                );
                if last_takes_value {
                    i += 1;
                    if let Some(v) = args.get(i) {
                        expanded.push(v.clone());
                    }
                }
                let sub = parse_options(&expanded)?;
                if !sub.urls.is_empty() {
                    return Err(CurlError::Unmodelled(format!(
                        "the option {a} is not modelled"
                    )));
                }
                c.merge(sub);
            }
            _ if a.starts_with('-') && a.len() == 2 => {
                return Err(CurlError::Unmodelled(format!(
                    "the option {a} is not modelled"
                )));
            }
            _ => c.urls.push(a.to_string()),
        }
        i += 1;
    }
    Ok(c)
}

impl Curl {
    fn merge(&mut self, o: Curl) {
        self.silent |= o.silent;
        self.show_error |= o.show_error;
        self.insecure |= o.insecure;
        self.verbose |= o.verbose;
        self.fail |= o.fail;
        self.include |= o.include;
        self.head |= o.head;
        self.discard_body |= o.discard_body;
        self.write_out = o.write_out.or(self.write_out.take());
        self.max_time = o.max_time.or(self.max_time);
        self.method = o.method.or(self.method.take());
    }

    /// The request for one of the URLs.
    pub fn request(&self, url: &str) -> HttpRequest {
        let url = if url.contains("://") {
            url.to_string()
        } else {
            format!("http://{url}")
        };
        HttpRequest {
            url,
            method: self
                .method
                .clone()
                .unwrap_or_else(|| if self.head { "HEAD" } else { "GET" }.into()),
            insecure: self.insecure,
            max_time_secs: self.max_time,
        }
    }

    /// What curl prints for `reply` to `req`, and its exit code.
    pub fn render(&self, req: &HttpRequest, reply: &HttpReply) -> (Vec<(Stream, String)>, i32) {
        let mut out = Vec::new();
        let errors_shown = !self.silent || self.show_error;
        let path_and_host = split_url(&req.url);
        if self.verbose {
            let (host, path) = &path_and_host;
            out.push((
                Stream::Stderr,
                format!(
                    "> {} {path} HTTP/1.1\n> Host: {host}\n> User-Agent: curl/8.16.0\n> Accept: */*\n> \n",
                    req.method
                ),
            ));
        }
        let (status, body, code) = match reply {
            HttpReply::Response { status, body } => (*status, body.as_str(), 0),
            HttpReply::Failed { code, line } => {
                if errors_shown {
                    out.push((Stream::Stderr, ensure_newline(line)));
                }
                if let Some(w) = &self.write_out {
                    out.push((Stream::Stdout, write_out(w, 0, *code, &req.url)));
                }
                return (out, *code);
            }
            HttpReply::Unmodelled(why) => unreachable!("handled by the caller: {why}"),
        };
        let head = format!("HTTP/1.1 {status} {}\n", reason(status));
        if self.verbose {
            out.push((Stream::Stderr, format!("< {head}< \n")));
        }
        if self.fail && status >= 400 {
            if errors_shown {
                out.push((
                    Stream::Stderr,
                    format!("curl: (22) The requested URL returned error: {status}\n"),
                ));
            }
            if let Some(w) = &self.write_out {
                out.push((Stream::Stdout, write_out(w, status, 22, &req.url)));
            }
            return (out, 22);
        }
        if !self.discard_body {
            if self.include || self.head {
                out.push((Stream::Stdout, format!("{head}\n")));
            }
            if !self.head && !body.is_empty() {
                out.push((Stream::Stdout, body.to_string()));
            }
        }
        if let Some(w) = &self.write_out {
            out.push((Stream::Stdout, write_out(w, status, code, &req.url)));
        }
        (out, code)
    }
}

fn ensure_newline(s: &str) -> String {
    if s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

fn split_url(url: &str) -> (String, String) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    }
}

/// `-w`'s format: the variables runbooks print, and `\n` / `\t`.
fn write_out(format: &str, status: u16, exit: i32, url: &str) -> String {
    format
        .replace("%{http_code}", &format!("{status:03}"))
        .replace("%{response_code}", &format!("{status:03}"))
        .replace("%{exitcode}", &exit.to_string())
        .replace("%{url_effective}", url)
        .replace("%{url}", url)
        .replace("\\n", "\n")
        .replace("\\t", "\t")
}

/// The reason phrase of a status (for `-v`, `-i`).
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn options() {
        let c = parse(&args(
            "-sSk -o /dev/null -w %{http_code}\\n https://x:6443/version",
        ))
        .unwrap();
        assert!(c.silent && c.show_error && c.insecure && c.discard_body);
        assert_eq!(c.urls, vec!["https://x:6443/version"]);
        let req = c.request(&c.urls[0]);
        let (out, code) = c.render(
            &req,
            &HttpReply::Response {
                status: 403,
                body: "{}".into(),
            },
        );
        assert_eq!(code, 0);
        assert_eq!(out, vec![(Stream::Stdout, "403\n".to_string())]);
        assert!(matches!(
            parse(&args("--cacert ca.pem https://x")),
            Err(CurlError::Unmodelled(_))
        ));
        assert!(matches!(parse(&args("-s")), Err(CurlError::Usage(_))));
    }

    #[test]
    fn silent_hides_errors_and_fail_exits_22() {
        let quiet = parse(&args("-s helloworld:5000/hello")).unwrap();
        let req = quiet.request("helloworld:5000/hello");
        assert_eq!(req.url, "http://helloworld:5000/hello");
        let failed = HttpReply::Failed {
            code: 6,
            line: "curl: (6) Could not resolve host: helloworld".into(),
        };
        assert_eq!(quiet.render(&req, &failed), (vec![], 6));
        let loud = parse(&args("-sS helloworld:5000/hello")).unwrap();
        assert_eq!(loud.render(&req, &failed).0.len(), 1);
        let fail = parse(&args("-sf helloworld:5000/hello")).unwrap();
        let (out, code) = fail.render(
            &req,
            &HttpReply::Response {
                status: 503,
                body: "no healthy upstream".into(),
            },
        );
        assert_eq!((out.len(), code), (0, 22));
    }
}
