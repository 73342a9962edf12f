//! Where each key path of a YAML document starts, so that every config error can name its line.
//!
//! `serde_yaml` gives values without positions, so the same text is read once more as a stream of
//! marked events (`yaml-rust2`) and every mapping key and sequence item is recorded by its path.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::path::KeyPath;

/// Line numbers (1-based) by key path (`tenants[1].forwards[0].to`).
#[derive(Debug, Default)]
pub struct Positions {
    lines: HashMap<String, usize>,
    /// The text's last line: no position is reported past it.
    last_line: usize,
}

impl Positions {
    /// Indexes `text`. A document the event parser cannot read gives an empty index (the value
    /// parser reports the syntax error itself).
    pub fn index(text: &str) -> Self {
        let mut recorder = Recorder::default();
        let mut parser = Parser::new_from_str(text);
        let last_line = line_count(text);
        if parser.load(&mut recorder, false).is_err() {
            return Positions { lines: HashMap::new(), last_line };
        }
        Positions { lines: recorder.lines, last_line }
    }

    /// The line of `path`, or of its nearest ancestor that has one; a node the parser places
    /// after the last line break (an empty value at the end) is on the last line.
    pub fn line(&self, path: &KeyPath) -> Option<usize> {
        let mut text = path.as_str();
        loop {
            if let Some(line) = self.lines.get(text) {
                return Some((*line).clamp(1, self.last_line.max(1)));
            }
            let cut = text.rfind(['.', '['])?;
            text = &text[..cut];
        }
    }
}

/// The number of lines in `text` as YAML counts them: `\r\n`, a lone `\r` and `\n` each end
/// one, and text after the last break is one more (at least one line, even when empty).
pub fn line_count(text: &str) -> usize {
    let bytes = text.as_bytes();
    let breaks = bytes
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count();
    let unterminated = !matches!(bytes.last(), None | Some(b'\n' | b'\r'));
    (breaks + usize::from(unterminated)).max(1)
}

enum Frame {
    Mapping { path: KeyPath, key: Option<String> },
    Sequence { path: KeyPath, next: usize },
}

#[derive(Default)]
struct Recorder {
    stack: Vec<Frame>,
    lines: HashMap<String, usize>,
}

impl Recorder {
    /// Handles the start of a node; returns its path when it is a value (not a mapping key).
    fn node_start(&mut self, key_text: Option<&str>, line: usize) -> Option<KeyPath> {
        match self.stack.last_mut() {
            None => Some(KeyPath::root()),
            Some(Frame::Sequence { path, next }) => {
                let item = path.index(*next);
                *next += 1;
                self.lines.entry(item.as_str().to_owned()).or_insert(line);
                Some(item)
            }
            Some(Frame::Mapping { path, key }) => match key.take() {
                Some(k) => Some(path.key(&k)),
                None => {
                    let k = key_text.unwrap_or("?").to_owned();
                    self.lines.entry(path.key(&k).as_str().to_owned()).or_insert(line);
                    *key = Some(k);
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for Recorder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let line = mark.line();
        match event {
            Event::Scalar(text, ..) => {
                self.node_start(Some(&text), line);
            }
            Event::Alias(_) => {
                self.node_start(None, line);
            }
            Event::MappingStart(..) => {
                let path = self.node_start(None, line);
                self.stack.push(Frame::Mapping { path: path.unwrap_or_else(KeyPath::root), key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.node_start(None, line);
                self.stack.push(Frame::Sequence { path: path.unwrap_or_else(KeyPath::root), next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keys_and_items_by_path() {
        let text = "version: 1\ntenants:\n  - name: acme\n    forwards:\n      - \"1:a:1\"\n      - port: 2\n        to: b:2\n";
        let p = Positions::index(text);
        let root = KeyPath::root();
        assert_eq!(p.line(&root.key("version")), Some(1));
        assert_eq!((line_count(""), line_count("a"), line_count("a\n"), line_count("a\nb")), (1, 1, 1, 2));
        assert_eq!((line_count("a\r\nb\r\n"), line_count("a\r\r\rb")), (2, 4));
        assert_eq!(p.line(&root.key("tenants").index(0).key("name")), Some(3));
        assert_eq!(p.line(&root.key("tenants").index(0).key("forwards").index(0)), Some(5));
        assert_eq!(p.line(&root.key("tenants").index(0).key("forwards").index(1).key("to")), Some(7));
        assert_eq!(p.line(&root.key("tenants").index(0).key("forwards").index(1).key("nope")), Some(6));
    }
}
