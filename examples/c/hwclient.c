/*  Hello World client (the zguide's hwclient): a REQ socket that sends COUNT "Hello"s
    (default 10) to ENDPOINT (default tcp://127.0.0.1:5555) and expects "World" for each.
    Gives up after 10 s without a reply (RCVTIMEO), so it never hangs a CI run.

        ./hwclient [ENDPOINT [COUNT]]
*/
#include <zmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main (int argc, char *argv[])
{
    const char *endpoint = argc > 1 ? argv[1] : "tcp://127.0.0.1:5555";
    int count = argc > 2 ? atoi (argv[2]) : 10;

    int major, minor, patch;
    zmq_version (&major, &minor, &patch);
    printf ("libzmq %d.%d.%d; connecting to %s\n", major, minor, patch, endpoint);

    void *context = zmq_ctx_new ();
    void *requester = zmq_socket (context, ZMQ_REQ);
    int timeout = 10000, linger = 0;
    zmq_setsockopt (requester, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt (requester, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect (requester, endpoint) != 0) {
        fprintf (stderr, "hwclient: connect: %s\n", zmq_strerror (zmq_errno ()));
        return 1;
    }
    for (int n = 0; n < count; n++) {
        char buffer[10];
        zmq_send (requester, "Hello", 5, 0);
        int size = zmq_recv (requester, buffer, sizeof buffer, 0);
        if (size != 5 || memcmp (buffer, "World", 5) != 0) {
            fprintf (stderr, "hwclient: request %d: %s\n", n,
                     size < 0 ? zmq_strerror (zmq_errno ()) : "bad reply");
            return 1;
        }
        printf ("Received World %d\n", n);
    }
    zmq_close (requester);
    zmq_ctx_term (context);
    return 0;
}
