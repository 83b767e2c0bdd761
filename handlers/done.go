package handlers

// Done is the result of a use case that has nothing to return: the request
// was carried out.
type Done struct{}
