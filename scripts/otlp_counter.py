"""A minimal OTLP/gRPC trace receiver for benchmarks: counts spans, prints the total
on SIGTERM. Usage: python3 scripts/otlp_counter.py PORT (pip: grpcio, opentelemetry-proto)."""
import signal
import sys
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

spans = 0


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request, context):
        global spans
        spans += sum(len(s.spans) for rs in request.resource_spans for s in rs.scope_spans)
        return trace_service_pb2.ExportTraceServiceResponse()


server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Receiver(), server)
server.add_insecure_port(f"127.0.0.1:{sys.argv[1]}")
server.start()


def stop(*_):
    print(spans, flush=True)
    server.stop(0)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
server.wait_for_termination()
