package handlers

// Done is the result of a use case that answers with nothing but success:
// the request was carried out; nothing to return.
type Done struct{}
