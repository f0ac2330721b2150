//! A minimal PDF 1.4 writer: A4 pages of text lines in the standard Helvetica fonts, wrapped to the page width
//! and broken across pages, with a page-numbered footer.
//!
//! Written here rather than pulled in as a crate: the PDF crates (printpdf over lopdf) bring image codecs,
//! compression, encryption and font parsing, about thirty crates, for what is a page of text. The standard
//! fonts need no embedding, so a record is a few hundred lines of plain PDF that any viewer (and `pdftotext`)
//! reads.

use std::fmt::Write as _;

/// How a line is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The document's title, large and bold.
    Title,
    /// A section heading, bold, with space above it.
    Heading,
    /// A field's label on a line of its own, bold.
    Label,
    Body,
    /// Something a reader must not miss: bold, red, larger.
    Flag,
}

/// One line of the document. Text longer than the page is wrapped; leading spaces indent every wrapped piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub style: Style,
    pub text: String,
}

impl Line {
    pub fn new(style: Style, text: impl Into<String>) -> Self {
        Self {
            style,
            text: text.into(),
        }
    }
}

// A4 in points, with 20 mm margins.
const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
const FOOTER_SIZE: f32 = 8.0;

struct Setting {
    bold: bool,
    size: f32,
    leading: f32,
    space_before: f32,
    red: bool,
}

fn setting(style: Style) -> Setting {
    let (bold, size, leading, space_before, red) = match style {
        Style::Title => (true, 16.0, 22.0, 0.0, false),
        Style::Heading => (true, 12.5, 17.0, 8.0, false),
        Style::Label => (true, 10.5, 14.0, 2.0, false),
        Style::Body => (false, 10.5, 14.0, 0.0, false),
        Style::Flag => (true, 13.0, 19.0, 4.0, true),
    };
    Setting {
        bold,
        size,
        leading,
        space_before,
        red,
    }
}

/// Helvetica's advance widths (thousandths of the font size) for ASCII 32..=126, from its AFM file. Bold is
/// a little wider; wrapping with these and a 4% allowance keeps bold lines inside the margin too.
const HELVETICA_WIDTHS: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278,
    278, // space to /
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // 0 to 9
    278, 278, 584, 584, 584, 556, 1015, // : to @
    667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667,
    611, 722, 667, 944, 667, 667, 611, // A to Z
    278, 278, 278, 469, 556, 333, // [ to `
    556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500,
    278, 556, 500, 722, 500, 500, 500, // a to z
    334, 260, 334, 584, // { to ~
];

fn char_width(c: char, bold: bool) -> f32 {
    let base = match c as u32 {
        32..=126 => f32::from(HELVETICA_WIDTHS[c as usize - 32]),
        // Wide non-ASCII glyphs; other accented letters are about as wide as their base letter.
        _ if "—…‰™ŒœÆæ".contains(c) => 1000.0,
        _ => 667.0,
    };
    if bold {
        base * 1.04
    } else {
        base
    }
}

fn text_width(text: &str, bold: bool, size: f32) -> f32 {
    text.chars().map(|c| char_width(c, bold)).sum::<f32>() * size / 1000.0
}

/// The byte for `c` in WinAnsiEncoding (the standard fonts' Windows code page 1252), or `?`.
fn win_ansi(c: char) -> u8 {
    match c {
        ' '..='~' => c as u8,
        '\u{A0}'..='\u{FF}' => c as u32 as u8,
        '€' => 0x80,
        '‚' => 0x82,
        'ƒ' => 0x83,
        '„' => 0x84,
        '…' => 0x85,
        '†' => 0x86,
        '‡' => 0x87,
        'ˆ' => 0x88,
        '‰' => 0x89,
        'Š' => 0x8A,
        '‹' => 0x8B,
        'Œ' => 0x8C,
        'Ž' => 0x8E,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        '˜' => 0x98,
        '™' => 0x99,
        'š' => 0x9A,
        '›' => 0x9B,
        'œ' => 0x9C,
        'ž' => 0x9E,
        'Ÿ' => 0x9F,
        '\t' => b' ',
        _ => b'?',
    }
}

/// A PDF literal string: `(`, `)` and `\` escaped, bytes outside ASCII as octal so the file stays 7-bit.
fn pdf_string(text: &str) -> String {
    let mut out = String::from("(");
    for byte in text.chars().map(win_ansi) {
        match byte {
            b'(' | b')' | b'\\' => {
                out.push('\\');
                out.push(byte as char);
            }
            32..=126 => out.push(byte as char),
            _ => {
                let _ = write!(out, "\\{byte:03o}");
            }
        }
    }
    out.push(')');
    out
}

/// A PDF text string for the document information (UTF-16BE with its byte-order mark, as hex).
fn pdf_text_string(text: &str) -> String {
    let mut out = String::from("<FEFF");
    for unit in text.encode_utf16() {
        let _ = write!(out, "{unit:04X}");
    }
    out.push('>');
    out
}

/// Splits one line's text into pieces no wider than `width`, breaking at spaces (or inside a word longer
/// than a whole line).
fn wrap(text: &str, bold: bool, size: f32, width: f32) -> Vec<String> {
    let fits = |piece: &str| text_width(piece, bold, size) <= width;
    let mut pieces = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let candidate = if current.is_empty() {
            word.to_owned()
        } else {
            format!("{current} {word}")
        };
        if fits(&candidate) {
            current = candidate;
            continue;
        }
        if !current.is_empty() {
            pieces.push(std::mem::take(&mut current));
        }
        for c in word.chars() {
            current.push(c);
            if !fits(&current) && current.chars().count() > 1 {
                current.pop();
                pieces.push(std::mem::replace(&mut current, c.to_string()));
            }
        }
    }
    if !current.is_empty() || pieces.is_empty() {
        pieces.push(current);
    }
    pieces
}

struct Placed {
    style: Style,
    x: f32,
    y: f32,
    text: String,
}

/// Lays the lines out on pages, top to bottom.
fn layout(lines: &[Line]) -> Vec<Vec<Placed>> {
    let top = PAGE_HEIGHT - MARGIN;
    let bottom = MARGIN + 2.0 * FOOTER_SIZE;
    let mut pages: Vec<Vec<Placed>> = vec![Vec::new()];
    let mut y = top;
    for line in lines {
        let set = setting(line.style);
        for text in line.text.split('\n') {
            let indent_chars = text.chars().take_while(|c| *c == ' ').count();
            let indent = indent_chars as f32 * char_width(' ', set.bold) * set.size / 1000.0;
            let width = PAGE_WIDTH - 2.0 * MARGIN - indent;
            let at_top = y >= top;
            if !at_top {
                y -= set.space_before;
            }
            for piece in wrap(text, set.bold, set.size, width) {
                if y - set.size < bottom {
                    pages.push(Vec::new());
                    y = top;
                }
                y -= set.size;
                if let Some(page) = pages.last_mut() {
                    page.push(Placed {
                        style: line.style,
                        x: MARGIN + indent,
                        y,
                        text: piece,
                    });
                }
                y -= set.leading - set.size;
            }
        }
    }
    pages
}

/// The whole document as PDF bytes. `title` goes in the document information and the footer.
pub fn render(title: &str, lines: &[Line]) -> Vec<u8> {
    let pages = layout(lines);
    let page_count = pages.len();
    // Objects: 1 catalog, 2 page tree, 3 Helvetica, 4 Helvetica-Bold, 5 information, then per page its page
    // object and its content stream.
    let page_object = |index: usize| 6 + 2 * index;
    let mut objects: Vec<Vec<u8>> = Vec::with_capacity(5 + 2 * page_count);
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    let kids: Vec<String> = (0..page_count)
        .map(|i| format!("{} 0 R", page_object(i)))
        .collect();
    objects.push(
        format!(
            "<< /Type /Pages /Kids [{}] /Count {page_count} >>",
            kids.join(" ")
        )
        .into_bytes(),
    );
    for font in ["Helvetica", "Helvetica-Bold"] {
        objects.push(
            format!(
                "<< /Type /Font /Subtype /Type1 /BaseFont /{font} /Encoding /WinAnsiEncoding >>"
            )
            .into_bytes(),
        );
    }
    objects.push(
        format!(
            "<< /Title {} /Producer {} >>",
            pdf_text_string(title),
            pdf_text_string("Doorstep office")
        )
        .into_bytes(),
    );
    for (index, page) in pages.iter().enumerate() {
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] \
                 /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {} 0 R >>",
                page_object(index) + 1
            )
            .into_bytes(),
        );
        let content = page_content(page, title, index + 1, page_count);
        let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
        stream.extend_from_slice(content.as_bytes());
        stream.extend_from_slice(b"\nendstream");
        objects.push(stream);
    }

    // A binary comment after the header tells transfer tools the file is not text.
    let mut out: Vec<u8> = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (index, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", index + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref_at = out.len();
    let mut xref = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for offset in offsets {
        // Each entry is exactly 20 bytes, as the format requires: the space before the newline is part of it.
        let _ = writeln!(xref, "{offset:010} 00000 n ");
    }
    let _ = write!(
        xref,
        "trailer\n<< /Size {} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref_at}\n%%EOF\n",
        objects.len() + 1
    );
    out.extend_from_slice(xref.as_bytes());
    out
}

fn page_content(page: &[Placed], title: &str, number: usize, count: usize) -> String {
    let mut content = String::new();
    for placed in page {
        let set = setting(placed.style);
        let font = if set.bold { "F2" } else { "F1" };
        let colour = if set.red { "0.75 0 0 rg" } else { "0 g" };
        let _ = writeln!(
            content,
            "BT {colour} /{font} {} Tf 1 0 0 1 {:.2} {:.2} Tm {} Tj ET",
            set.size,
            placed.x,
            placed.y,
            pdf_string(&placed.text)
        );
    }
    let footer = format!("{title} · page {number} of {count}");
    let _ = write!(
        content,
        "BT 0.4 g /F1 {FOOTER_SIZE} Tf 1 0 0 1 {MARGIN:.2} {:.2} Tm {} Tj ET",
        MARGIN - FOOTER_SIZE,
        pdf_string(&footer)
    );
    content
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_brackets_and_backslashes_and_encode_win_ansi() {
        assert_eq!(pdf_string(r"a (b) \ c"), r"(a \(b\) \\ c)");
        assert_eq!(pdf_string("Zoë — £5"), r"(Zo\353 \227 \2435)");
        assert_eq!(pdf_string("日"), "(?)");
    }

    #[test]
    fn wrapping_keeps_every_word_and_every_piece_inside_the_width() {
        let text = "word ".repeat(60) + &"x".repeat(200);
        let pieces = wrap(&text, false, 10.5, 200.0);
        assert!(pieces.len() > 3);
        for piece in &pieces {
            assert!(
                text_width(piece, false, 10.5) <= 200.0,
                "{piece:?} too wide"
            );
        }
        let rejoined: String = pieces.concat().split_whitespace().collect();
        let original: String = text.split_whitespace().collect();
        assert_eq!(rejoined, original);
        assert_eq!(wrap("", false, 10.5, 200.0), vec![String::new()]);
    }

    #[test]
    fn long_documents_break_onto_more_pages_and_stay_inside_the_margins() {
        let lines: Vec<Line> = (0..200)
            .map(|i| Line::new(Style::Body, format!("line {i}")))
            .collect();
        let pages = layout(&lines);
        assert!(pages.len() >= 4, "200 lines of 14 pt fill four A4 pages");
        let placed: usize = pages.iter().map(Vec::len).sum();
        assert_eq!(placed, 200);
        for page in &pages {
            for line in page {
                assert!(line.y >= MARGIN + 2.0 * FOOTER_SIZE - 0.01);
                assert!(line.y <= PAGE_HEIGHT - MARGIN);
            }
        }
        let pdf = String::from_utf8_lossy(&render("test", &lines)).into_owned();
        assert!(pdf.contains(&format!("/Count {}", pages.len())));
    }
}
