# cmake -DIN=openapi.json -DOUT=openapi_embed.cpp -P embed.cmake
file(READ "${IN}" content)
file(WRITE "${OUT}.tmp" "// Generated from schemas/openapi.json; do not edit.\n#include \"schemas/openapi.h\"\nnamespace sriovd::schemas {\nstd::string_view openapi_json() {\n  static const char text[] = R\"sriovd_json(${content})sriovd_json\";\n  return {text, sizeof text - 1};\n}\n}  // namespace sriovd::schemas\n")
file(RENAME "${OUT}.tmp" "${OUT}")
