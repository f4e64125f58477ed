package offsets

import "errors"

// ErrSyntax is wrapped by every parse error of an offset spec.
var ErrSyntax = errors.New("offsets: bad offset")
