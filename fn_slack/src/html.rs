//! HTML (a rich-text field: a description, a note) as Slack message text, in one pass over
//! html5ever's tokens: no document tree, so the work is linear in the input whatever its
//! nesting (html2text, which builds a tree, grew with the square of the nesting: 1,600 / 3,200
//! / 6,400 nested `<div>` took 0.16 / 0.58 / 2.24 s in a debug build).
//!
//! Block elements (`div`, `li`, table rows…) and `<br>` end lines, paragraphs and headings are
//! set apart by a blank line (as html2text, which this replaces, showed them); list items
//! start with `* `; table cells are separated by a space; runs of white space collapse to one
//! space except inside `<pre>`; `script`, `style`, `head` and `template` say nothing; entities
//! are decoded. The output is Slack text: `&`, `<` and `>` of the content are escaped, and an
//! `http`, `https` or `mailto` link becomes Slack's `<url|text>` (other links show their text),
//! so that the only markup in the output is a link: never a mention such as `<!channel>`.

use std::cell::RefCell;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

/// Elements that start and end on a line of their own (paragraphs: [`PARAGRAPHS`]).
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "header",
    "li",
    "main",
    "nav",
    "ol",
    "section",
    "summary",
    "tr",
    "ul",
];

/// Blocks set apart by a blank line.
const PARAGRAPHS: &[&str] = &[
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "p",
    "pre",
    "table",
];

/// Elements whose content is not text to show.
const SILENT: &[&str] = &["script", "style", "head", "template", "title", "noscript"];

#[derive(Default)]
struct Text {
    /// Slack text: content escaped, links as `<url|text>`.
    out: String,
    /// An open link: its escaped URL and where its text starts in `out`.
    link: Option<(String, usize)>,
    /// Inside `<pre>` (depth), where white space is kept.
    pre: usize,
    /// Inside a silent element (its name), whose text is dropped.
    silent: Option<String>,
    /// A space is owed before the next text (collapsed white space).
    space: bool,
}

impl Text {
    fn newline(&mut self) {
        self.space = false;
        if !self.out.is_empty() && !self.out.ends_with('\n') {
            self.out.push('\n');
        }
    }

    fn blank_line(&mut self) {
        self.newline();
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    fn text(&mut self, s: &str) {
        if self.silent.is_some() {
            return;
        }
        if self.pre > 0 {
            escape_into(&mut self.out, s);
            return;
        }
        for word in s.split_inclusive(char::is_whitespace) {
            let trimmed = word.trim_end_matches(char::is_whitespace);
            if !trimmed.is_empty() {
                self.owed_space();
                escape_into(&mut self.out, trimmed);
                self.space = false;
            }
            if trimmed.len() < word.len() {
                self.space = true;
            }
        }
    }

    fn owed_space(&mut self) {
        if self.space && !self.out.is_empty() && !self.out.ends_with(['\n', ' ']) {
            self.out.push(' ');
        }
        self.space = false;
    }

    /// `<a href>`: a link to a URL Slack can open starts (an open one ends first).
    fn open_link(&mut self, href: Option<&str>) {
        self.close_link();
        if let Some(url) = href.and_then(slack_url) {
            self.owed_space();
            self.link = Some((url, self.out.len()));
        }
    }

    /// `</a>`: the text since the link opened becomes `<url|text>` (`<url>` without text).
    fn close_link(&mut self) {
        let Some((url, start)) = self.link.take() else {
            return;
        };
        let text: String = self.out[start..]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        self.out.truncate(start);
        if text.is_empty() {
            self.out.push_str(&format!("<{url}>"));
        } else {
            self.out.push_str(&format!("<{url}|{text}>"));
        }
    }

    fn tag(&mut self, kind: TagKind, name: &str, href: Option<&str>) -> TokenSinkResult<()> {
        if let Some(silent) = &self.silent {
            if kind == TagKind::EndTag && silent == name {
                self.silent = None;
            }
            return TokenSinkResult::Continue;
        }
        let start = kind == TagKind::StartTag;
        if SILENT.contains(&name) && start {
            self.silent = Some(name.to_string());
            return match name {
                "script" => TokenSinkResult::RawData(RawKind::ScriptData),
                "style" | "noscript" => TokenSinkResult::RawData(RawKind::Rawtext),
                "title" => TokenSinkResult::RawData(RawKind::Rcdata),
                _ => TokenSinkResult::Continue,
            };
        }
        match name {
            "br" => {
                self.space = false;
                self.out.push('\n');
            }
            "textarea" if start => return TokenSinkResult::RawData(RawKind::Rcdata),
            "td" | "th" if start => self.space = true,
            "pre" => {
                self.blank_line();
                self.pre = if start {
                    self.pre + 1
                } else {
                    self.pre.saturating_sub(1)
                };
            }
            "li" if start => {
                self.newline();
                self.out.push_str("* ");
            }
            "a" if start => self.open_link(href),
            "a" => self.close_link(),
            _ if PARAGRAPHS.contains(&name) => self.blank_line(),
            _ if BLOCKS.contains(&name) => self.newline(),
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

struct Sink(RefCell<Text>);

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut text = self.0.borrow_mut();
        match token {
            Token::CharacterTokens(s) => text.text(&s),
            Token::TagToken(tag) => {
                let href = tag
                    .attrs
                    .iter()
                    .find(|a| &*a.name.local == "href")
                    .map(|a| a.value.to_string());
                return text.tag(tag.kind, &tag.name, href.as_deref());
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

/// Escapes Slack's control characters (`&`, `<`, `>`) of `text` onto `out`.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

/// `href` as the URL of a Slack link, if it is an absolute `http`, `https` or `mailto` URL
/// (parsed with the `url` crate); `|` (which would end the URL), spaces, `<` and `>`
/// percent-encoded (a `mailto:` URL keeps them as written: its path is opaque), `&` escaped.
fn slack_url(href: &str) -> Option<String> {
    let url = url::Url::parse(href.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https" | "mailto") {
        return None;
    }
    let mut encoded = String::with_capacity(url.as_str().len());
    for c in url.as_str().chars() {
        match c {
            '|' => encoded.push_str("%7C"),
            ' ' => encoded.push_str("%20"),
            '<' => encoded.push_str("%3C"),
            '>' => encoded.push_str("%3E"),
            c => encoded.push(c),
        }
    }
    let mut out = String::new();
    escape_into(&mut out, &encoded);
    Some(out)
}

/// `html` as Slack text (see the module docs); a link left open at the end shows its text.
pub fn to_slack(html: &str) -> String {
    let tokenizer = Tokenizer::new(
        Sink(RefCell::new(Text::default())),
        TokenizerOpts::default(),
    );
    let queue = BufferQueue::default();
    queue.push_back(StrTendril::from_slice(html));
    let _ = tokenizer.feed(&queue);
    tokenizer.end();
    let mut text = tokenizer.sink.0.into_inner();
    // An unclosed link: its text stays, without the link.
    text.link = None;
    text.out
}

#[cfg(test)]
mod tests {
    use super::to_slack as to_text;

    #[test]
    fn blocks_lines_lists_and_entities() {
        assert_eq!(
            to_text("<div>Blocked <b>1.2.3.4</b></div>"),
            "Blocked 1.2.3.4\n"
        );
        assert_eq!(to_text("a<br/>b"), "a\nb");
        assert_eq!(to_text("<p>one</p><p>two</p>"), "one\n\ntwo\n\n");
        assert_eq!(
            to_text("<ul><li>a</li><li>b &amp; c</li></ul>"),
            "* a\n* b &amp; c\n"
        );
        assert_eq!(to_text("<p>  spaced \n\t out  </p>"), "spaced out\n\n");
        assert_eq!(to_text("<pre>  keep\n  this</pre>"), "  keep\n  this\n\n");
        assert_eq!(
            to_text("<style>p{}</style><script>if (a < b) x()</script>text"),
            "text"
        );
        assert_eq!(
            to_text("<table><tr><td>a</td><td>b</td></tr></table>"),
            "a b\n\n"
        );
        assert_eq!(
            to_text("<p>See the <a href='https://wiki.example/dos'>DoS runbook</a>.</p>"),
            "See the <https://wiki.example/dos|DoS runbook>.\n\n"
        );
    }

    /// Links keep their URL as Slack links; nothing else can become markup.
    #[test]
    fn links_and_nothing_else_become_slack_markup() {
        assert_eq!(
            to_text("<a href=\"https://x.example/a?b=1&amp;c=2\">run <b>book</b></a>"),
            "<https://x.example/a?b=1&amp;c=2|run book>"
        );
        assert_eq!(
            to_text("<a href='mailto:soc@example.com'></a>"),
            "<mailto:soc@example.com>"
        );
        // Not a URL Slack opens: the text alone.
        assert_eq!(to_text("<a href='javascript:alert(1)'>x</a>"), "x");
        assert_eq!(to_text("<a href='#top'>top</a>"), "top");
        // A mention in the text or the URL stays text.
        assert_eq!(
            to_text("<a href='https://x.example/|<!channel>'>&lt;!channel&gt;</a>"),
            "<https://x.example/%7C%3C!channel%3E|&lt;!channel&gt;>"
        );
        assert_eq!(to_text("a < b & <!channel>"), "a &lt; b &amp;");
        // A mailto URL keeps spaces and brackets as written (opaque path): encoded, so the
        // link is one URL (found by fuzzing slack_render).
        assert_eq!(
            to_text("<a href=\"mailto:a b<c>&amp;d@example.com\">x</a>"),
            "<mailto:a%20b%3Cc%3E&amp;d@example.com|x>"
        );
        // Unclosed: the text stays, without a link.
        assert_eq!(to_text("<a href='https://x.example/'>open"), "open");
    }

    #[test]
    fn hostile_shapes_are_linear() {
        // Deep nesting and runs of `<` go through in one pass (html2text grew with the square
        // of the nesting).
        let nested = "<div>".repeat(200_000);
        assert_eq!(to_text(&nested), "");
        let lts = "<".repeat(1 << 20);
        // Each `<` is text, escaped as `&lt;`.
        assert_eq!(to_text(&lts).len(), 4 << 20);
    }
}
