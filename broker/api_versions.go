package broker

import (
	"context"

	"github.com/barge-broker/barge/netproto"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions v0-3. Versions the table does not hold are answered by netproto
// itself (error 35 and the list, in v0 layout), as clients expect.
func init() { register(kmsg.ApiVersions, 0, 3, replying(handleAPIVersions)) }

func handleAPIVersions(b *Broker, _ context.Context, req *netproto.Request) kmsg.Response {
	resp := req.Body.(*kmsg.ApiVersionsRequest).ResponseKind().(*kmsg.ApiVersionsResponse)
	for _, key := range sortedAPIKeys() {
		v := apis[key].versions
		resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: key, MinVersion: v.Min, MaxVersion: v.OfferedMax()})
	}
	return resp
}
