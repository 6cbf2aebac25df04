package storage

// OpenTest is openTest for the external test package (conformance_test.go).
var OpenTest = openTest
