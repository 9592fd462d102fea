// etcd at the version Kubernetes itself pins (go.etcd.io/etcd/server/v3 is in its module graph);
// etcd's own module cannot be installed with `go install` (it has replace directives).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
