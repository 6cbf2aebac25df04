package engine

// Secrets gives credentials by name. Flows refer to a credential by its name ($secrets.NAME in
// expressions, or a node parameter naming it), never by its value, so flow files can be shared
// and committed; the values come from the environment or a secrets file and are kept out of
// run records and logs.
type Secrets interface {
	// Secret returns the value of the named secret, and false when there is none.
	Secret(name string) (string, bool)
}
