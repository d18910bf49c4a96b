/* cmd_eval.h: `facelink eval` (cmd_eval.c), called from main.c's command table. */
#ifndef FL_CLI_CMD_EVAL_H
#define FL_CLI_CMD_EVAL_H

/* Run `facelink eval ...`; argv[0] is "eval". Returns the exit status. */
int fl_cli_eval(int argc, char **argv);

#endif /* FL_CLI_CMD_EVAL_H */
