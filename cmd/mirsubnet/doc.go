// Command mirsubnet is the single binary of the project: it runs validators
// and local networks and inspects what they recorded.
//
// Each subcommand lives in its own file and registers itself with
// registerCommand from an init function; main.go only builds the app, sets
// up logging (ipfs/go-log/v2) and turns errors into exit codes.
//
//	mirsubnet mircat [--node N] [--module M] [--type T] [--from I] [--to J] [--json] LOG...
//	mirsubnet mircat replay --modules rbc[,app] LOG...
//	mirsubnet mircat hash LOG...
//	mirsubnet sample --nodes 4 --broadcasts 100 --eventlog DIR
package main
