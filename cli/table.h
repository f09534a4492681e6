// Table: aligned text columns for the CLI's human output. Cells are UTF-8 strings; widths are
// counted in code points, so names with non-ASCII characters still line up.
#pragma once

#include <string>
#include <vector>

namespace sriovd::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size(); }
  // Columns separated by two spaces; the last column is not padded.
  std::string render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace sriovd::cli
