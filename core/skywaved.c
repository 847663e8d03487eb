#include "config.h"
#include <skywave/skywave.h>
int main(int argc, char **argv) { (void) argc; (void) argv; return 1; }
