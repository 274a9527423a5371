/*  Hello World server (the zguide's hwserver): a REP socket that answers every "Hello" with
    "World". Binds ENDPOINT (default tcp://127.0.0.1:5555), prints the endpoint it got (so a
    wildcard port can be handed to the client), and serves COUNT requests (default: forever).

        ./hwserver [ENDPOINT [COUNT]]
*/
#include <zmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main (int argc, char *argv[])
{
    const char *endpoint = argc > 1 ? argv[1] : "tcp://127.0.0.1:5555";
    long count = argc > 2 ? atol (argv[2]) : -1;

    void *context = zmq_ctx_new ();
    void *responder = zmq_socket (context, ZMQ_REP);
    if (zmq_bind (responder, endpoint) != 0) {
        fprintf (stderr, "hwserver: bind %s: %s\n", endpoint, zmq_strerror (zmq_errno ()));
        return 1;
    }
    char bound[256];
    size_t len = sizeof bound;
    zmq_getsockopt (responder, ZMQ_LAST_ENDPOINT, bound, &len);
    printf ("%s\n", bound);
    fflush (stdout);

    for (long n = 0; count < 0 || n < count; n++) {
        char buffer[10];
        int size = zmq_recv (responder, buffer, sizeof buffer, 0);
        if (size != 5 || memcmp (buffer, "Hello", 5) != 0) {
            fprintf (stderr, "hwserver: unexpected request (%d bytes)\n", size);
            return 1;
        }
        zmq_send (responder, "World", 5, 0);
    }
    zmq_close (responder);
    zmq_ctx_term (context);
    return 0;
}
