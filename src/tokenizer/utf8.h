// UTF-8 helpers for the tokenizer: Python-compatible replacement of invalid
// bytes, character decoding, and the GPT-2 byte <-> unicode mapping.
#pragma once
#include <stddef.h>
#include <stdint.h>

// Copies s[0..n) replacing each maximal invalid subpart with U+FFFD, exactly as
// Python's bytes.decode("utf-8", "replace") (and Rust's from_utf8_lossy) do.
// Returns a malloc'd NUL-terminated string, its length in *out_len.
char *utf8_sanitize(const char *s, size_t n, size_t *out_len);

// Length of the valid UTF-8 prefix of s[0..n) that ends on a character boundary.
size_t utf8_valid_prefix(const char *s, size_t n);

// Decodes the character at s (valid UTF-8 assumed); returns its byte length.
int utf8_decode(const char *s, uint32_t *cp);
int utf8_encode(uint32_t cp, char *out);  // returns 1..4

// GPT-2 bytes_to_unicode: byte b is written as the code point byte_to_cp(b);
// cp_to_byte returns the byte for a code point, or -1 if it is not in the map.
uint32_t bytelevel_cp(int b);
int bytelevel_byte(uint32_t cp);

// Unicode classes as Rust's char methods see them (via utf8proc categories).
int uni_is_whitespace(uint32_t cp);  // White_Space property
int uni_is_numeric(uint32_t cp);     // Nd, Nl, No
int uni_is_word(uint32_t cp);        // regex \w: letters, marks, Nd, Nl, Pc, ZWJ/ZWNJ
