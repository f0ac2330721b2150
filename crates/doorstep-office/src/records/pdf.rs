//! The write-up as PDF: A4 pages of text lines, wrapped and broken across pages, with a page-numbered
//! footer, drawn with krilla in embedded, subset fonts, so any pupil's name prints and can be copied (or
//! read by `pdftotext`) back out of the file.
//!
//! Text goes through four steps. Each line is one paragraph of the Unicode bidirectional algorithm
//! (`unicode-bidi`); it is cut into pieces by the first font of a fallback chain that has each letter
//! (Noto Sans for Latin, Greek and Cyrillic, Noto Sans Arabic, then Noto Sans CJK); each piece is shaped with
//! rustybuzz (Arabic joining and ligatures, marks, kerning); and krilla draws the glyphs with the text each
//! stands for, so the PDF's text layer gives back the characters in reading order. In a left-to-right line
//! each right-to-left phrase is isolated first (as FSI … PDI would), so "Write-up by مريم الحسن, 23
//! November" keeps its date after the name. Lines wrap at spaces and between CJK characters; a paragraph
//! that starts right to left is set against the right margin.
//!
//! Where the fonts come from, and why:
//!
//! - Noto Sans and Noto Sans Arabic (regular and bold, SIL Open Font License, 1.5 MB, from Debian's
//!   `fonts-noto-core` 20201225) are committed in `assets/fonts/` and compiled into the office. A
//!   safeguarding record must print the names of the pupils most schools have, Polish and Arabic among
//!   them, on any machine the office runs on, whatever fonts it has.
//! - Noto Sans CJK is 19 MB, too big to carry in the repository or the binary. It is read at run time from
//!   Debian's `fonts-noto-cjk` ([`DEFAULT_CJK_FONT`], installed by `scripts/install-deps`; the office's
//!   `--cjk-font` names another file), the Simplified Chinese face of the collection by preference, and
//!   used in every style (it has no bold here). Without it, CJK characters print as empty boxes and the
//!   record says so under its last line, while the text export keeps every character.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use krilla::color::rgb;
use krilla::geom::Point;
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, FillRule};
use krilla::text::{Font, GlyphId, KrillaGlyph};
use krilla::{Data, Document};
use rustybuzz::ttf_parser::{self, name_id};
use rustybuzz::{Direction, UnicodeBuffer};
use unicode_bidi::{BidiClass, Level, ParagraphBidiInfo};

/// The lines a PDF sets are the core's write-up document's (its `Style` says how each is set).
pub use doorstep_core::write_up::{Line, Style};

/// Where Debian's `fonts-noto-cjk` puts Noto Sans CJK.
pub const DEFAULT_CJK_FONT: &str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc";

/// The face of a CJK collection used first: names at a UK school are most often Chinese.
const PREFERRED_CJK_FACES: [&str; 4] = [
    "Noto Sans CJK SC",
    "Noto Sans CJK TC",
    "Noto Sans CJK JP",
    "Noto Sans CJK KR",
];

static NOTO_SANS: &[u8] = include_bytes!("../../assets/fonts/NotoSans-Regular.ttf");
static NOTO_SANS_BOLD: &[u8] = include_bytes!("../../assets/fonts/NotoSans-Bold.ttf");
static NOTO_SANS_ARABIC: &[u8] = include_bytes!("../../assets/fonts/NotoSansArabic-Regular.ttf");
static NOTO_SANS_ARABIC_BOLD: &[u8] = include_bytes!("../../assets/fonts/NotoSansArabic-Bold.ttf");

#[derive(Debug, thiserror::Error)]
pub enum FontError {
    #[error("could not read the font {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not a font file this office can use")]
    Unusable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the PDF fonts could not be loaded: {0}")]
    Fonts(String),
    #[error("the PDF could not be written: {0}")]
    Write(String),
}

/// One face of a font file, as krilla embeds it and rustybuzz shapes with it.
#[derive(Clone)]
struct FontFace {
    name: String,
    data: Data,
    index: u32,
    font: Font,
}

impl FontFace {
    fn new(name: &str, data: Data, index: u32) -> Result<Self, FontError> {
        let unusable = || FontError::Unusable(name.to_owned());
        // Checked here, once: every later `Face::from_slice` on the same bytes succeeds.
        rustybuzz::Face::from_slice(data.as_ref(), index).ok_or_else(unusable)?;
        let font = Font::new(data.clone(), index).ok_or_else(unusable)?;
        Ok(Self {
            name: name.to_owned(),
            data,
            index,
            font,
        })
    }

    fn face(&self) -> Option<rustybuzz::Face<'_>> {
        rustybuzz::Face::from_slice(self.data.as_ref(), self.index)
    }
}

/// The fonts the PDF is set in: a fallback chain for regular text and one for bold.
#[derive(Clone)]
pub struct PdfFonts {
    regular: Vec<FontFace>,
    bold: Vec<FontFace>,
    /// Where the CJK face came from, if there is one.
    cjk: Option<String>,
}

impl std::fmt::Debug for PdfFonts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |chain: &[FontFace]| chain.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
        f.debug_struct("PdfFonts")
            .field("regular", &names(&self.regular))
            .field("bold", &names(&self.bold))
            .finish()
    }
}

impl PdfFonts {
    /// The fonts compiled into the office: Noto Sans and Noto Sans Arabic. No CJK.
    pub fn embedded() -> Result<Self, FontError> {
        let face = |name: &str, bytes: &'static [u8]| FontFace::new(name, Data::from(bytes), 0);
        Ok(Self {
            regular: vec![
                face("Noto Sans", NOTO_SANS)?,
                face("Noto Sans Arabic", NOTO_SANS_ARABIC)?,
            ],
            bold: vec![
                face("Noto Sans Bold", NOTO_SANS_BOLD)?,
                face("Noto Sans Arabic Bold", NOTO_SANS_ARABIC_BOLD)?,
            ],
            cjk: None,
        })
    }

    /// The embedded fonts, then the CJK font in `path` (a font or a collection such as Noto Sans CJK's
    /// `.ttc`, whose Simplified Chinese face is preferred).
    pub fn with_cjk_font(path: &Path) -> Result<Self, FontError> {
        let bytes = std::fs::read(path).map_err(|source| FontError::Read {
            path: path.to_owned(),
            source,
        })?;
        let index = cjk_face_index(&bytes)
            .ok_or_else(|| FontError::Unusable(format!("{} (no face with CJK)", path.display())))?;
        let cjk = FontFace::new(&path.display().to_string(), Data::from(bytes), index)?;
        let mut fonts = Self::embedded()?;
        fonts.regular.push(cjk.clone());
        fonts.bold.push(cjk);
        fonts.cjk = Some(format!("{} (face {index})", path.display()));
        Ok(fonts)
    }

    /// Where the CJK font came from, or `None` when CJK characters cannot be printed.
    pub fn cjk_source(&self) -> Option<&str> {
        self.cjk.as_deref()
    }

    /// Whether some font in the chain for `style` can draw `c`.
    pub fn can_draw(&self, c: char, style: Style) -> bool {
        self.chain(style)
            .iter()
            .any(|f| f.face().is_some_and(|face| face.glyph_index(c).is_some()))
    }

    fn chain(&self, style: Style) -> &[FontFace] {
        if setting(style).bold {
            &self.bold
        } else {
            &self.regular
        }
    }
}

/// The face of a font file (or collection) that draws Chinese: a preferred family if there is one, otherwise
/// the first face that has 中.
fn cjk_face_index(bytes: &[u8]) -> Option<u32> {
    let count = ttf_parser::fonts_in_collection(bytes).unwrap_or(1);
    let faces: Vec<(u32, ttf_parser::Face<'_>)> = (0..count)
        .filter_map(|i| ttf_parser::Face::parse(bytes, i).ok().map(|face| (i, face)))
        .filter(|(_, face)| face.glyph_index('中').is_some())
        .collect();
    let family = |face: &ttf_parser::Face<'_>| {
        face.names()
            .into_iter()
            .filter(|name| name.name_id == name_id::FAMILY && name.is_unicode())
            .find_map(|name| name.to_string())
    };
    PREFERRED_CJK_FACES
        .iter()
        .find_map(|wanted| {
            faces
                .iter()
                .find(|(_, face)| family(face).as_deref() == Some(*wanted))
        })
        .or(faces.first())
        .map(|(index, _)| *index)
}

static FONTS: OnceLock<Result<PdfFonts, String>> = OnceLock::new();

/// Sets the fonts every later [`render`] uses; the office calls it once at start. `false` if fonts were
/// already chosen (by an earlier call, or by a PDF rendered before it).
pub fn use_fonts(fonts: PdfFonts) -> bool {
    FONTS.set(Ok(fonts)).is_ok()
}

/// The fonts [`render`] uses: those given to [`use_fonts`], or else the embedded fonts with the CJK font
/// from [`DEFAULT_CJK_FONT`] if it is there.
fn fonts() -> Result<&'static PdfFonts, PdfError> {
    FONTS
        .get_or_init(|| {
            PdfFonts::with_cjk_font(Path::new(DEFAULT_CJK_FONT))
                .or_else(|error| {
                    tracing::warn!(%error, "no CJK font: CJK characters print as boxes in PDF records");
                    PdfFonts::embedded()
                })
                .map_err(|error| error.to_string())
        })
        .as_ref()
        .map_err(|error| PdfError::Fonts(error.clone()))
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

/// A run of text set in one face: a range of the paragraph, the face's place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FontRun {
    range: Range<usize>,
    font: usize,
}

/// Glyphs shaped from one run, ready for krilla, with their width in points.
struct Shaped {
    font: usize,
    text: String,
    glyphs: Vec<KrillaGlyph>,
    width: f32,
}

/// Lays text out with one style's fallback chain, noting the characters no font has.
struct Setter<'a> {
    /// One per face of the chain, in its order (every face was parsed when it was loaded, so none is
    /// `None` in practice).
    faces: Vec<Option<rustybuzz::Face<'a>>>,
    size: f32,
    missing: Vec<char>,
}

impl<'a> Setter<'a> {
    fn new(fonts: &'a PdfFonts, style: Style, size: f32) -> Self {
        let chain = fonts.chain(style);
        let faces = chain.iter().map(FontFace::face).collect();
        Self {
            faces,
            size,
            missing: Vec::new(),
        }
    }

    fn has(&self, font: usize, c: char) -> bool {
        self.faces
            .get(font)
            .and_then(Option::as_ref)
            .is_some_and(|face| face.glyph_index(c).is_some())
    }

    /// Splits `text[range]` into runs by face: a letter takes the first face that has it; a space, digit,
    /// mark or punctuation stays in the face of the run it is in when that face has it, so a phrase in one
    /// script is shaped as one piece.
    fn runs(&mut self, text: &str, range: Range<usize>) -> Vec<FontRun> {
        let mut runs: Vec<FontRun> = Vec::new();
        for (offset, c) in text[range.clone()].char_indices() {
            let at = range.start + offset;
            let current = runs.last().map(|run| run.font);
            let font = match current {
                Some(font) if !c.is_alphabetic() && self.has(font, c) => font,
                _ => match (0..self.faces.len()).find(|&font| self.has(font, c)) {
                    Some(font) => font,
                    None => {
                        let invisible = c.is_whitespace()
                            || c.is_control()
                            || unicode_bidi::bidi_class(c) == BidiClass::BN;
                        if !invisible {
                            self.missing.push(c);
                        }
                        current.unwrap_or(0)
                    }
                },
            };
            match runs.last_mut() {
                Some(run) if run.font == font => run.range.end = at + c.len_utf8(),
                _ => runs.push(FontRun {
                    range: at..at + c.len_utf8(),
                    font,
                }),
            }
        }
        runs
    }

    /// Shapes one run in one direction.
    fn shape(&self, text: &str, run: &FontRun, rtl: bool) -> Shaped {
        let piece = &text[run.range.clone()];
        let Some(face) = self.faces.get(run.font).and_then(Option::as_ref) else {
            return Shaped {
                font: run.font,
                text: piece.to_owned(),
                glyphs: Vec::new(),
                width: 0.0,
            };
        };
        let mut buffer = UnicodeBuffer::new();
        buffer.push_str(piece);
        buffer.set_direction(if rtl {
            Direction::RightToLeft
        } else {
            Direction::LeftToRight
        });
        buffer.guess_segment_properties();
        let output = rustybuzz::shape(face, &[], buffer);
        let per_em = face.units_per_em() as f32;
        // Each glyph stands for the text from its cluster to the next cluster in reading order.
        let mut starts: Vec<usize> = output
            .glyph_infos()
            .iter()
            .map(|info| info.cluster as usize)
            .collect();
        starts.sort_unstable();
        starts.dedup();
        let end_of = |start: usize| {
            starts
                .iter()
                .copied()
                .find(|s| *s > start)
                .unwrap_or(piece.len())
        };
        let mut width = 0.0;
        let glyphs = output
            .glyph_infos()
            .iter()
            .zip(output.glyph_positions())
            .map(|(info, position)| {
                let start = info.cluster as usize;
                let advance = position.x_advance as f32 / per_em;
                width += advance * self.size;
                KrillaGlyph::new(
                    GlyphId::new(info.glyph_id),
                    advance,
                    position.x_offset as f32 / per_em,
                    position.y_offset as f32 / per_em,
                    position.y_advance as f32 / per_em,
                    start..end_of(start),
                    None,
                )
            })
            .collect();
        Shaped {
            font: run.font,
            text: piece.to_owned(),
            glyphs,
            width,
        }
    }

    /// The width of `text[range]` in points, in the direction of its first strong character.
    fn width(&mut self, text: &str, range: Range<usize>, rtl: bool) -> f32 {
        self.runs(text, range)
            .iter()
            .map(|run| self.shape(text, run, rtl).width)
            .sum()
    }
}

/// Whether a line may break before or after `c` without a space: CJK scripts are written without them.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x2E80..=0x9FFF      // radicals, kana, CJK symbols, unified ideographs
        | 0xA960..=0xA97F    // Hangul Jamo Extended-A
        | 0xAC00..=0xD7FF    // Hangul syllables
        | 0xF900..=0xFAFF    // compatibility ideographs
        | 0xFF00..=0xFFEF    // full-width forms
        | 0x20000..=0x3FFFF) // supplementary ideographs
}

/// Where a paragraph may break: after a run of spaces, and around a CJK character. Each segment is a range
/// that may end with spaces.
fn segments(text: &str) -> Vec<Range<usize>> {
    let mut segments = Vec::new();
    let mut start = 0;
    let mut previous: Option<char> = None;
    for (at, c) in text.char_indices() {
        if let Some(p) = previous {
            let after_space = p.is_whitespace() && !c.is_whitespace();
            let around_cjk = !c.is_whitespace() && (is_cjk(c) || is_cjk(p)) && !is_mark(c);
            if (after_space || around_cjk) && at > start {
                segments.push(start..at);
                start = at;
            }
        }
        previous = Some(c);
    }
    if start < text.len() {
        segments.push(start..text.len());
    }
    segments
}

/// A combining mark, which must stay with the letter before it.
fn is_mark(c: char) -> bool {
    unicode_bidi::bidi_class(c) == BidiClass::NSM
}

/// The end of `range` without trailing whitespace.
fn trim_end(text: &str, range: Range<usize>) -> Range<usize> {
    let kept = text[range.clone()].trim_end().len();
    range.start..range.start + kept
}

/// Breaks a paragraph into lines no wider than `width`, as ranges of `text`.
fn wrap(setter: &mut Setter<'_>, text: &str, rtl: bool, width: f32) -> Vec<Range<usize>> {
    let mut lines: Vec<Range<usize>> = Vec::new();
    let mut line: Option<Range<usize>> = None;
    let mut line_width = 0.0;
    for segment in segments(text) {
        let ink = trim_end(text, segment.clone());
        let ink_width = setter.width(text, ink.clone(), rtl);
        let full_width = setter.width(text, segment.clone(), rtl);
        match line.as_mut() {
            Some(current) if line_width + ink_width <= width => {
                current.end = segment.end;
                line_width += full_width;
                continue;
            }
            Some(current) => lines.push(current.clone()),
            None => {}
        }
        if ink_width <= width {
            line = Some(segment);
            line_width = full_width;
            continue;
        }
        // A word longer than a whole line: cut it between characters, never before a mark.
        let mut piece_start = segment.start;
        let mut last_fit = segment.start;
        for (offset, c) in text[segment.clone()].char_indices().skip(1) {
            let at = segment.start + offset;
            if is_mark(c) {
                continue;
            }
            if setter.width(text, piece_start..at, rtl) > width && last_fit > piece_start {
                lines.push(piece_start..last_fit);
                piece_start = last_fit;
            }
            last_fit = at;
        }
        if setter.width(text, piece_start..segment.end, rtl) > width && last_fit > piece_start {
            lines.push(piece_start..last_fit);
            piece_start = last_fit;
        }
        line = Some(piece_start..segment.end);
        line_width = setter.width(text, piece_start..segment.end, rtl);
    }
    lines.extend(line);
    if lines.is_empty() {
        lines.push(0..0);
    }
    lines
}

/// One line placed on a page: its pieces in visual order, left to right.
struct Placed {
    style: Style,
    x: f32,
    y: f32,
    pieces: Vec<Shaped>,
}

/// First Strong Isolate and Pop Directional Isolate: a phrase between them is ordered on its own.
const FSI: char = '\u{2068}';
const PDI: char = '\u{2069}';

/// Whether a paragraph reads right to left: its first strong character is Arabic or Hebrew.
fn is_rtl_paragraph(text: &str) -> bool {
    unicode_bidi::get_base_direction(text) == unicode_bidi::Direction::Rtl
}

/// `text` with each right-to-left phrase (letters of right-to-left scripts and what lies between them)
/// isolated, as a template filled in with a name should be, so "Write-up by مريم الحسن, 23 November" keeps
/// its date after the name; and for each byte of the result, the byte of `text` it came from (`None` for
/// the isolates added).
fn isolate_rtl_phrases(text: &str) -> (String, Vec<Option<usize>>) {
    let strong_rtl = |c: char| matches!(unicode_bidi::bidi_class(c), BidiClass::R | BidiClass::AL);
    let strong = |c: char| {
        matches!(
            unicode_bidi::bidi_class(c),
            BidiClass::L | BidiClass::R | BidiClass::AL | BidiClass::EN
        )
    };
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut marked = String::with_capacity(text.len() + 12);
    let mut origin = Vec::with_capacity(text.len() + 12);
    let mut push = |marked: &mut String, c: char, from: Option<usize>| {
        marked.push(c);
        origin.extend(std::iter::repeat_n(from, c.len_utf8()));
    };
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if !strong_rtl(c) {
            push(&mut marked, c, Some(at));
            i += 1;
            continue;
        }
        // The phrase runs to its last right-to-left letter before the next left-to-right one (or a digit).
        let mut end = i;
        let mut j = i;
        while let Some(&(_, next)) = chars.get(j) {
            if strong_rtl(next) || (is_mark(next) && end + 1 == j) {
                end = j;
            } else if strong(next) {
                break;
            }
            j += 1;
        }
        push(&mut marked, FSI, None);
        for &(at, c) in &chars[i..=end] {
            push(&mut marked, c, Some(at));
        }
        push(&mut marked, PDI, None);
        i = end + 1;
    }
    (marked, origin)
}

/// The pieces of `text[line]` in visual order, left to right: ranges of `text`, each with whether it runs
/// right to left. A right-to-left paragraph follows the bidi algorithm as it is; a left-to-right one has its
/// right-to-left phrases isolated first.
fn visual_pieces(text: &str, rtl_paragraph: bool, line: Range<usize>) -> Vec<(Range<usize>, bool)> {
    if line.is_empty() {
        return Vec::new();
    }
    let (marked, origin) = if rtl_paragraph {
        (text.to_owned(), (0..text.len()).map(Some).collect())
    } else {
        isolate_rtl_phrases(text)
    };
    let to_marked = |offset: usize| {
        origin
            .iter()
            .position(|o| *o == Some(offset))
            .unwrap_or(marked.len())
    };
    let level = if rtl_paragraph {
        Level::rtl()
    } else {
        Level::ltr()
    };
    let bidi = ParagraphBidiInfo::new(&marked, Some(level));
    let (levels, runs) = bidi.visual_runs(to_marked(line.start)..to_marked(line.end));
    let mut pieces = Vec::new();
    for run in runs {
        let rtl = levels.get(run.start).is_some_and(|level| level.is_rtl());
        // The run without the isolates, back in `text`'s offsets.
        let mut piece: Option<Range<usize>> = None;
        for (offset, c) in marked[run.clone()].char_indices() {
            match (
                origin.get(run.start + offset).copied().flatten(),
                piece.as_mut(),
            ) {
                (Some(at), Some(current)) if current.end == at => current.end = at + c.len_utf8(),
                (Some(at), _) => {
                    pieces.extend(piece.take().map(|p| (p, rtl)));
                    piece = Some(at..at + c.len_utf8());
                }
                (None, _) => pieces.extend(piece.take().map(|p| (p, rtl))),
            }
        }
        pieces.extend(piece.map(|p| (p, rtl)));
    }
    pieces
}

/// Shapes a line's text in visual order: its pieces left to right, each cut by face.
fn shape_line(
    setter: &mut Setter<'_>,
    text: &str,
    rtl_paragraph: bool,
    line: Range<usize>,
) -> Vec<Shaped> {
    let mut shaped = Vec::new();
    for (range, rtl) in visual_pieces(text, rtl_paragraph, line) {
        let mut font_runs = setter.runs(text, range);
        if rtl {
            font_runs.reverse();
        }
        shaped.extend(font_runs.iter().map(|r| setter.shape(text, r, rtl)));
    }
    shaped
}

/// Lays the lines out on pages, top to bottom; returns the pages and the characters no font could draw.
fn layout(fonts: &PdfFonts, lines: &[Line]) -> (Vec<Vec<Placed>>, Vec<char>) {
    let top = MARGIN;
    let bottom = PAGE_HEIGHT - MARGIN - 2.0 * FOOTER_SIZE;
    let mut pages: Vec<Vec<Placed>> = vec![Vec::new()];
    let mut missing = Vec::new();
    // y grows down the page, as krilla draws.
    let mut y = top;
    for line in lines {
        let set = setting(line.style);
        let mut setter = Setter::new(fonts, line.style, set.size);
        for text in line.text.split('\n') {
            // One paragraph per line: other line and paragraph breaks, and control characters, are spaces.
            let text: String = text
                .trim_end_matches('\r')
                .chars()
                .map(|c| {
                    if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                        ' '
                    } else {
                        c
                    }
                })
                .collect();
            let indent_chars = text.chars().take_while(|c| *c == ' ').count();
            let body = &text[indent_chars..];
            let indent = setter.width(" ", 0..1, false) * indent_chars as f32;
            let width = PAGE_WIDTH - 2.0 * MARGIN - indent;
            if y > top {
                y += set.space_before;
            }
            let rtl = is_rtl_paragraph(body);
            for line_range in wrap(&mut setter, body, rtl, width) {
                let line_range = trim_end(body, line_range);
                let pieces = shape_line(&mut setter, body, rtl, line_range);
                let line_width: f32 = pieces.iter().map(|p| p.width).sum();
                if y + set.size > bottom {
                    pages.push(Vec::new());
                    y = top;
                }
                y += set.size;
                let x = if rtl {
                    PAGE_WIDTH - MARGIN - line_width
                } else {
                    MARGIN + indent
                };
                if let Some(page) = pages.last_mut() {
                    page.push(Placed {
                        style: line.style,
                        x,
                        y,
                        pieces,
                    });
                }
                y += set.leading - set.size;
            }
        }
        missing.append(&mut setter.missing);
    }
    missing.sort_unstable();
    missing.dedup();
    (pages, missing)
}

/// The whole document as PDF bytes, in the office's fonts. `title` goes in the document information and the
/// footer.
pub fn render(title: &str, lines: &[Line]) -> Result<Vec<u8>, PdfError> {
    render_with(fonts()?, title, lines)
}

/// [`render`] in the given fonts.
pub fn render_with(fonts: &PdfFonts, title: &str, lines: &[Line]) -> Result<Vec<u8>, PdfError> {
    let (pages, missing) = layout(fonts, lines);
    let pages = if missing.is_empty() {
        pages
    } else {
        tracing::warn!(
            characters = %missing.iter().collect::<String>(),
            "a PDF record has characters no font of the office can draw"
        );
        let mut noted = lines.to_vec();
        noted.push(Line::new(Style::Body, ""));
        noted.push(Line::new(
            Style::Label,
            format!(
                "This PDF could not draw {} of the characters in this record (the office has no font for them), \
                 so they print as empty boxes. The text version of the record has every character.",
                missing.len()
            ),
        ));
        layout(fonts, &noted).0
    };
    let count = pages.len();
    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(title.to_owned())
            .producer("Doorstep office".to_owned())
            .language("en-GB".to_owned()),
    );
    let settings = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT)
        .ok_or_else(|| PdfError::Write("the A4 page size".into()))?;
    let mut footer_setter = Setter::new(fonts, Style::Body, FOOTER_SIZE);
    for (index, placed_lines) in pages.iter().enumerate() {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        for placed in placed_lines {
            let set = setting(placed.style);
            let colour = if set.red {
                rgb::Color::new(191, 0, 0)
            } else {
                rgb::Color::black()
            };
            surface.set_fill(Some(fill(colour)));
            let chain = fonts.chain(placed.style);
            draw(
                &mut surface,
                chain,
                placed.x,
                placed.y,
                set.size,
                &placed.pieces,
            );
        }
        let footer = format!("{title} · page {} of {count}", index + 1);
        let pieces = shape_line(
            &mut footer_setter,
            &footer,
            is_rtl_paragraph(&footer),
            0..footer.len(),
        );
        surface.set_fill(Some(fill(rgb::Color::new(102, 102, 102))));
        draw(
            &mut surface,
            &fonts.regular,
            MARGIN,
            PAGE_HEIGHT - MARGIN + FOOTER_SIZE,
            FOOTER_SIZE,
            &pieces,
        );
        surface.finish();
        page.finish();
    }
    document
        .finish()
        .map_err(|error| PdfError::Write(error.to_string()))
}

fn fill(colour: rgb::Color) -> Fill {
    Fill {
        paint: colour.into(),
        opacity: NormalizedF32::ONE,
        rule: FillRule::NonZero,
    }
}

/// Draws a line's shaped pieces left to right from `x` on the baseline `y`.
fn draw(
    surface: &mut krilla::surface::Surface<'_>,
    chain: &[FontFace],
    x: f32,
    y: f32,
    size: f32,
    pieces: &[Shaped],
) {
    let mut x = x;
    for piece in pieces {
        if let Some(face) = chain.get(piece.font) {
            surface.draw_glyphs(
                Point::from_xy(x, y),
                &piece.glyphs,
                face.font.clone(),
                &piece.text,
                size,
                false,
            );
        }
        x += piece.width;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fonts() -> PdfFonts {
        PdfFonts::embedded().unwrap()
    }

    #[test]
    fn the_embedded_fonts_load_and_cover_polish_and_arabic_but_not_chinese() {
        let fonts = fonts();
        for c in "Zażółć Gęślą jaźń ŁŚŻ مريم الحسن Ω Ж".chars() {
            for style in [Style::Body, Style::Heading] {
                assert!(fonts.can_draw(c, style), "{c:?} in {style:?}");
            }
        }
        assert!(!fonts.can_draw('王', Style::Body));
        assert_eq!(fonts.cjk_source(), None);
    }

    #[test]
    fn runs_keep_a_phrase_in_one_face_and_change_face_for_another_script() {
        let fonts = fonts();
        let mut setter = Setter::new(&fonts, Style::Body, 10.5);
        let text = "Pupil: مريم الحسن, 7";
        let runs = setter.runs(text, 0..text.len());
        let faces: Vec<(&str, usize)> = runs
            .iter()
            .map(|r| (&text[r.range.clone()], r.font))
            .collect();
        assert_eq!(faces, [("Pupil: ", 0), ("مريم الحسن, 7", 1)]);
        assert!(setter.missing.is_empty());
        let text = "王小明";
        setter.runs(text, 0..text.len());
        assert_eq!(setter.missing, ['王', '小', '明']);
    }

    #[test]
    fn wrapping_keeps_every_word_and_every_line_inside_the_width() {
        let fonts = fonts();
        let mut setter = Setter::new(&fonts, Style::Body, 10.5);
        let text = "word ".repeat(60) + &"x".repeat(200) + " مريم الحسن".repeat(20).as_str();
        let lines = wrap(&mut setter, &text, false, 200.0);
        assert!(lines.len() > 3);
        for line in &lines {
            let ink = trim_end(&text, line.clone());
            assert!(
                setter.width(&text, ink.clone(), false) <= 200.0,
                "{:?} too wide",
                &text[ink]
            );
        }
        let rejoined: String = lines.iter().map(|l| &text[l.clone()]).collect::<String>();
        assert_eq!(rejoined, text, "nothing lost or repeated");
        assert_eq!(wrap(&mut setter, "", false, 200.0), vec![0..0]);
    }

    #[test]
    fn chinese_text_without_spaces_breaks_between_characters() {
        assert_eq!(segments("王小明 went"), [0..3, 3..6, 6..10, 10..14]);
        assert_eq!(segments("Zażółć Gęślą"), [0..11, 11..19]);
    }

    #[test]
    fn long_documents_break_onto_more_pages_and_stay_inside_the_margins() {
        let fonts = fonts();
        let lines: Vec<Line> = (0..200)
            .map(|i| Line::new(Style::Body, format!("line {i}")))
            .collect();
        let (pages, missing) = layout(&fonts, &lines);
        assert!(missing.is_empty());
        assert!(pages.len() >= 4, "200 lines of 14 pt fill four A4 pages");
        let placed: usize = pages.iter().map(Vec::len).sum();
        assert_eq!(placed, 200);
        for page in &pages {
            for line in page {
                assert!(line.y <= PAGE_HEIGHT - MARGIN - 2.0 * FOOTER_SIZE + 0.01);
                assert!(line.y >= MARGIN);
            }
        }
    }

    #[test]
    fn a_right_to_left_name_in_an_english_line_keeps_the_words_after_it_after_it() {
        let text = "Write-up by مريم الحسن, 23 November";
        let pieces: Vec<(&str, bool)> = visual_pieces(text, false, 0..text.len())
            .into_iter()
            .map(|(range, rtl)| (&text[range], rtl))
            .collect();
        assert_eq!(
            pieces,
            [
                ("Write-up by ", false),
                ("مريم الحسن", true),
                (", 23 November", false)
            ]
        );
        // A paragraph in Arabic follows the bidi algorithm: its first words are on the right.
        let text = "قالت مريم 7 مرات";
        let pieces = visual_pieces(text, true, 0..text.len());
        assert!(pieces.len() > 1);
        assert!(pieces.iter().all(|(range, _)| !range.is_empty()));
        assert_eq!(pieces.last().map(|(range, _)| range.start), Some(0));
    }

    #[test]
    fn a_right_to_left_paragraph_ends_at_the_right_margin() {
        let fonts = fonts();
        let (pages, _) = layout(&fonts, &[Line::new(Style::Body, "مريم الحسن")]);
        let line = &pages[0][0];
        let width: f32 = line.pieces.iter().map(|p| p.width).sum();
        assert!((line.x + width - (PAGE_WIDTH - MARGIN)).abs() < 0.01);
    }
}
