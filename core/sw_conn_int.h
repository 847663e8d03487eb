/* Private to the connection layers. */
#ifndef SW_CONN_INT_H
#define SW_CONN_INT_H
#endif
