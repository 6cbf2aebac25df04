module github.com/flowd/flowd

go 1.26.8

require (
	github.com/expr-lang/expr v1.17.8
	github.com/mattn/go-sqlite3 v1.14.53
	github.com/robfig/cron/v3 v3.0.1
)
