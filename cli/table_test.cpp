#include <doctest/doctest.h>

#include "cli/table.h"

using sriovd::cli::Table;

TEST_CASE("columns line up, counting UTF-8 characters, and lines carry no trailing blanks") {
  Table t({"ADDRESS", "DRIVER", "NAME"});
  t.add({"0000:17:00.0", "ice", "Ethernet E810"});
  t.add({"0000:3b:02.0", "-", "Ünïcode"});
  CHECK(t.render() ==
        "ADDRESS       DRIVER  NAME\n"
        "0000:17:00.0  ice     Ethernet E810\n"
        "0000:3b:02.0  -       Ünïcode\n");
}

TEST_CASE("short rows are padded with empty cells") {
  Table t({"A", "B"});
  t.add({"x"});
  CHECK(t.render() == "A  B\nx\n");
}
