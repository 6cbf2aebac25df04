package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/flowd/flowd/web"
)

// cmdHashPassword reads a password from the first line of stdin and prints its bcrypt hash,
// the value of FLOWD_AUTH_PASSWORD_HASH. Reading stdin keeps the password out of the shell
// history and process listings.
func cmdHashPassword(stdin io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, "flowd hash-password: read stdin:", err)
		return exitProblem
	}
	hash, err := web.HashPassword(strings.TrimRight(line, "\r\n"))
	if err != nil {
		fmt.Fprintln(stderr, "flowd hash-password:", err)
		return exitUsage
	}
	fmt.Fprintln(stdout, hash)
	return exitOK
}
