//! Plain text tables: columns padded to their widest cell (terminal width, so accented and
//! wide characters line up), numbers right-aligned, two spaces between columns, no trailing
//! spaces. Cells are made printable first: a file name cannot move the cursor.

use crate::error::printable;

/// A table being filled row by row.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
}

impl Table {
    /// A table with these column headers, every column left-aligned.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            right: vec![false; headers.len()],
        }
    }

    /// Right-aligns the given columns (numbers).
    pub fn right(mut self, columns: &[usize]) -> Table {
        for &c in columns {
            self.right[c] = true;
        }
        self
    }

    /// Adds a row; missing cells are empty, extra ones dropped.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut cells: Vec<String> = cells.into_iter().map(|c| printable(&c.into())).collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// The table as lines of text, each ending in a newline.
    pub fn render(&self) -> String {
        let width = console::measure_text_width;
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(widths[i] - width(cell));
                if self.right[i] {
                    line.push_str(&pad);
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_numbers_right_and_lines_have_no_trailing_spaces() {
        let mut table = Table::new(&["split", "images", "note"]).right(&[1]);
        table.row(["train", "1200", ""]);
        table.row(["val", "7", "né ✓"]);
        table.row(["x\u{1b}[2J", "12345", "wide 猫"]);
        assert_eq!(
            table.render(),
            "split       images  note\n\
             train         1200\n\
             val              7  né ✓\n\
             x\\u{1b}[2J   12345  wide 猫\n"
        );
    }

    #[test]
    fn short_rows_are_padded_and_long_ones_cut() {
        let mut table = Table::new(&["a", "b"]);
        table.row(["1"]);
        table.row(["1", "2", "3"]);
        assert_eq!(table.render(), "a  b\n1\n1  2\n");
    }
}
