import { TableColumn } from 'typeorm';
import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The starting catalogue (constants, so inlining them in SQL is safe). */
const SEED: readonly [name: string, price: number][] = [
  ['Apple', 120],
  ['Bread', 250],
  ['Cheese', 480],
];

/** Adds `item.price` and seeds three items. */
export class AddItemPrice1732540100000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.addColumn(
      'item',
      new TableColumn({ name: 'price', type: 'int', default: 0, isNullable: false }),
    );
    const q = (name: string): string => queryRunner.connection.driver.escape(name);
    const values = SEED.map(([name, price]) => `('${name}', ${price})`).join(', ');
    await queryRunner.query(
      `INSERT INTO ${q('item')} (${q('name')}, ${q('price')}) VALUES ${values}`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const q = (name: string): string => queryRunner.connection.driver.escape(name);
    const names = SEED.map(([name]) => `'${name}'`).join(', ');
    await queryRunner.query(`DELETE FROM ${q('item')} WHERE ${q('name')} IN (${names})`);
    await queryRunner.dropColumn('item', 'price');
  }
}
