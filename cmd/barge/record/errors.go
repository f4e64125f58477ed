package record

import "errors"

// ErrFormat is wrapped by the errors of produce input that does not match
// the -f format. Its text is shown to users, so it carries no package
// prefix.
var ErrFormat = errors.New("input does not match the format")
