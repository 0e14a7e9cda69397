//! Aligned plain-text tables for terminal output: the one table renderer
//! every reporting verb shares, so `up`, `ring simulate`, `ratelimit rules`,
//! `id compare` and friends line up the same way.

/// Renders rows as left-aligned columns separated by two spaces; rows may
/// have different lengths (a column is as wide as its widest cell). Widths
/// count characters, not bytes; trailing spaces are trimmed.
pub fn render<R: AsRef<[String]>>(rows: &[R]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (column, cell) in row.as_ref().iter().enumerate() {
            let width = cell.chars().count();
            match widths.get_mut(column) {
                Some(widest) => *widest = (*widest).max(width),
                None => widths.push(width),
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.as_ref().iter().zip(&widths) {
            line.push_str(cell);
            line.push_str(&" ".repeat(width - cell.chars().count() + 2));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn columns_align() {
        let rows = [
            ["a".to_string(), "bb".to_string()],
            ["ccc".to_string(), "d".to_string()],
        ];
        assert_eq!(render(&rows), "a    bb\nccc  d\n");
    }

    #[test]
    fn ragged_rows_and_wide_characters_align_by_character() {
        let rows = [
            row(&["tick", "offered", "fixed"]),
            row(&["é", "10"]),
            row(&[]),
        ];
        assert_eq!(render(&rows), "tick  offered  fixed\né     10\n\n");
    }

    #[test]
    fn cells_with_trailing_space_are_trimmed_only_at_line_end() {
        let rows = [row(&["a", ""]), row(&["", "b"])];
        assert_eq!(render(&rows), "a\n   b\n");
    }
}
