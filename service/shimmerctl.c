#include <stdio.h>
int main(void){puts("shimmerctl");return 0;}
